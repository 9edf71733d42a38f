"""The rotate workflow's request, plan and report, and the checks made before any request.

check_local_state reads the profile or environment that contains the key being replaced and
chooses the new key's destination. Nothing in this module sends a request to AWS.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from keyrot.errors import InvalidInputError, NotFoundError, PartialFailure, SafetyRefusal
from keyrot.keystatus import Subject
from keyrot.models import AccessKey, LastUse, NewAccessKey
from keyrot.secret_destinations import (
    Destination,
    EnvFileDestination,
    OutputDestination,
    ProfileDestination,
)

RetireAction = Literal["deactivate", "delete", "keep"]
RETIRE_RESULTS: dict[str, str] = {
    "deactivate": "deactivated",
    "delete": "deleted",
    "keep": "kept active",
}


class Reporter(Protocol):
    """The receiver of progress notes and warnings (keyrot.render.Output in the command)."""

    def note(self, message: str) -> None: ...

    def warn(self, message: str) -> None: ...


@dataclass(frozen=True)
class Interaction:
    """The prompts and notes for the person running keyrot; a None prompt means no terminal."""

    reporter: Reporter
    confirm: Callable[[str], bool] | None
    ask_mfa_code: Callable[[str], str] | None
    sleep: Callable[[float], None] = time.sleep


@dataclass(frozen=True)
class RotationRequest:
    """The rotation the command line requests."""

    user_name: str | None
    key_id: str | None
    profile_option: str | None
    destination: Destination | None
    secret_output: bool
    retire: RetireAction
    delete_inactive_key: bool
    assume_yes: bool
    dry_run: bool
    verify_timeout: float
    mfa_code: str | None
    region_option: str | None = None
    endpoint_url_option: str | None = None

    @property
    def profile(self) -> str:
        return self.profile_option or os.environ.get("AWS_PROFILE") or "default"

    def connection_flags(self) -> str:
        """Return --region and --endpoint-url as given, for the commands keyrot suggests."""
        flags = ""
        if self.region_option:
            flags += f" --region {shlex.quote(self.region_option)}"
        if self.endpoint_url_option:
            flags += f" --endpoint-url {shlex.quote(self.endpoint_url_option)}"
        return flags


@dataclass(frozen=True)
class LocalState:
    """The key's profile or environment and the new key's destination, read before any request."""

    destination: Destination
    scope: str
    own_key_id: str | None
    profile_flag: str  # --profile as the suggested commands repeat it, or ""
    rerun_command: str  # the rotate command that finds this rotation's journal again
    connection_flags: str = ""  # --region and --endpoint-url as given, or ""


@dataclass(frozen=True)
class RotationPlan:
    """The checked plan: which key is replaced, where its successor goes, what happens to it."""

    subject: Subject
    self_rotation: bool
    old_key: AccessKey
    spare_key: AccessKey | None
    destination: Destination
    scope: str
    retire: RetireAction
    before: list[AccessKey]
    profile_flag: str
    rerun_command: str
    connection_flags: str = ""

    def finish_command(self) -> str:
        """Return the command that retires the old key by hand."""
        key_id = self.old_key.access_key_id
        user = self.subject.command_flag()
        if self.retire == "delete":
            user_option = f" --user-name {self.subject.user_name}" if self.subject.user_name else ""
            options = f"{self.profile_flag}{self.connection_flags}{user_option}"
            return f"aws iam delete-access-key{options} --access-key-id {key_id}"
        # Without a profile, a self-rotation's finishing command may be signed with the old key
        # itself (still in the environment variables), which deactivate refuses without --force.
        force = " --force" if self.self_rotation and not self.profile_flag else ""
        options = f"{self.profile_flag}{self.connection_flags}{user}{force}"
        return f"keyrot deactivate{options} {key_id}"


@dataclass(frozen=True)
class RotationReport:
    """The keys a rotation found and changed; new_key is the only in-memory copy of the secret."""

    plan: RotationPlan
    dry_run: bool
    new_key: NewAccessKey | None
    after: list[AccessKey]
    changed: list[str]
    saved_path: Path | None = None
    recovery: str | None = None
    retire_error: PartialFailure | None = None

    @property
    def old_key_result(self) -> str:
        if self.retire_error is not None:
            return "left active"
        result = RETIRE_RESULTS[self.plan.retire]
        return f"would be {result}" if self.dry_run else result

    def to_json(self, *, include_secret: bool) -> dict[str, Any]:
        plan = self.plan
        document: dict[str, Any] = {
            "UserName": plan.subject.display_name,
            "Action": "rotate",
            "DryRun": self.dry_run,
            "Before": [key.to_json() for key in plan.before],
            "After": [key.to_json() for key in self.after],
            "Changed": list(self.changed),
            "NewAccessKey": self._new_key_json(include_secret=include_secret),
            "OldAccessKey": {
                "AccessKeyId": plan.old_key.access_key_id,
                "Action": plan.retire,
                "Result": self.old_key_result,
            },
            "DeletedInactiveKey": plan.spare_key.access_key_id if plan.spare_key else None,
            "Destination": {
                **plan.destination.to_record(),
                **({"Path": str(self.saved_path)} if self.saved_path else {}),
            },
            "Recovery": self.recovery,
        }
        caller = plan.subject.caller_json()
        if caller is not None:
            document["Caller"] = caller
        return document

    def _new_key_json(self, *, include_secret: bool) -> dict[str, Any] | None:
        if self.new_key is None:
            return None
        record = self.new_key.key.to_json()
        if include_secret:
            record["SecretAccessKey"] = self.new_key.secret_access_key
        return record


def check_local_state(request: RotationRequest) -> LocalState:
    """Read the profile or environment that contains the key, refusing before any request is sent.

    A rotation of another user's key (--user) needs an explicit destination. A rotation of the
    caller's own key stores the new key where the old one is: in the profile's file, or, for a
    key from environment variables, in an explicit destination.
    """
    if request.user_name is not None:
        state = _state_for_user(request)
    elif request.profile_option is None and os.environ.get("AWS_ACCESS_KEY_ID"):
        state = _state_for_environment(request)
    else:
        return _state_for_profile(request)
    state.destination.check()
    return state


def _state_for_user(request: RotationRequest) -> LocalState:
    destination = request.destination
    if destination is None:
        if not request.secret_output:
            raise InvalidInputError(
                "rotating another user's key needs somewhere to put the new secret: pass "
                "--save-profile NAME, --env-file PATH, --output json or --show-secret"
            )
        destination = OutputDestination()
    assert request.user_name is not None
    signer = f" --profile {shlex.quote(request.profile_option)}" if request.profile_option else ""
    connection = request.connection_flags()
    rerun = (f"keyrot rotate{signer}{connection} --user {request.user_name}"
             f"{_destination_options(destination)}")
    return LocalState(destination=destination, scope=f"user:{request.user_name}",
                      own_key_id=None, profile_flag=signer, rerun_command=rerun,
                      connection_flags=connection)


def _state_for_environment(request: RotationRequest) -> LocalState:
    key_id = os.environ.get("AWS_ACCESS_KEY_ID", "")
    if os.environ.get("AWS_SESSION_TOKEN") or os.environ.get("AWS_SECURITY_TOKEN"):
        raise SafetyRefusal(
            f"the key {key_id} in AWS_ACCESS_KEY_ID comes with a session token, so it is a "
            "temporary STS credential, which cannot be rotated; nothing was changed"
        )
    if request.destination is None and not request.secret_output:
        raise SafetyRefusal(_environment_key_message(key_id))
    destination = request.destination or OutputDestination()
    connection = request.connection_flags()
    return LocalState(destination=destination, scope=f"key:{key_id}", own_key_id=key_id,
                      profile_flag="",
                      rerun_command=(f"keyrot rotate{connection}"
                                     f"{_destination_options(destination)}"),
                      connection_flags=connection)


def _environment_key_message(key_id: str) -> str:
    destinations = "--output json, --show-secret, --env-file PATH or --save-profile NAME"
    profile = os.environ.get("AWS_PROFILE")
    if profile:
        # botocore reads the variables before AWS_PROFILE, as the AWS CLI does.
        return (
            f"the key {key_id} comes from the environment variables AWS_ACCESS_KEY_ID and "
            f"AWS_SECRET_ACCESS_KEY, which take precedence over AWS_PROFILE={profile}, so "
            "keyrot has nowhere to store a new one; nothing was changed. To rotate the "
            f"profile's key, pass --profile {shlex.quote(profile)} or unset AWS_ACCESS_KEY_ID "
            f"and AWS_SECRET_ACCESS_KEY; to rotate the variables' key, give a destination: "
            f"{destinations}"
        )
    return (
        f"the key {key_id} comes from the environment variables AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, so keyrot has nowhere to store a new one; nothing was "
        f"changed. Pass --profile NAME to rotate a profile's key, or give a destination: "
        f"{destinations}"
    )


def _destination_options(destination: Destination) -> str:
    if isinstance(destination, ProfileDestination):
        return (f" --save-profile {shlex.quote(destination.section)} --credentials-file "
                f"{shlex.quote(str(destination.path))}")
    if isinstance(destination, EnvFileDestination):
        return f" --env-file {shlex.quote(str(destination.path))}"
    return " --output json"


def _state_for_profile(request: RotationRequest) -> LocalState:
    from keyrot.credentials import find_profile_key

    if request.destination is not None:
        raise InvalidInputError(
            "--save-profile, --credentials-file and --env-file choose where another user's new "
            "key goes; a profile's own key is always saved back into that profile"
        )
    profile = request.profile
    try:
        found = find_profile_key(profile)
    except NotFoundError:
        _check_long_term(profile, None)
        raise
    _check_long_term(profile, found.path)
    if found.has_session_token:
        raise SafetyRefusal(
            f"profile {profile} in {found.path} contains temporary STS credentials (it has a "
            "session token), which cannot be rotated; rotate the long-term key they came from "
            "instead. Nothing was changed"
        )

    profile_flag = f" --profile {shlex.quote(profile)}"
    return LocalState(
        destination=ProfileDestination(found.path, found.section,
                                       expected_access_key_id=found.access_key_id),
        scope=f"profile:{found.path.resolve()}:{found.section}",
        own_key_id=found.access_key_id,
        profile_flag=profile_flag,
        rerun_command=f"keyrot rotate{profile_flag}{request.connection_flags()}",
        connection_flags=request.connection_flags(),
    )


def _check_long_term(profile: str, key_file: Path | None) -> None:
    """Refuse a profile whose requests botocore signs with temporary credentials."""
    from keyrot.credentials import credentials_file_path
    from keyrot.profile_source import profile_settings, refuse_temporary, temporary_source

    source = temporary_source(profile_settings(profile), key_file, credentials_file_path())
    if source is not None:
        raise refuse_temporary(profile, source, has_static_key=key_file is not None)


def stale_key_warnings(old_key_id: str, destination: Destination) -> list[str]:
    """Warn about each section that contains old_key_id and that the rotation leaves unchanged.

    The files searched are the destination's and the AWS credentials and config files that
    botocore reads. The destination's own section is rewritten, so it is not listed.
    """
    from keyrot.credentials import config_file_path, credentials_file_path, sections_with_key

    written: tuple[Path, str] | None = None
    paths = [credentials_file_path(), config_file_path()]
    if isinstance(destination, ProfileDestination):
        written = (Path(os.path.realpath(destination.path)), destination.section)
        paths.insert(0, destination.path)

    warnings: list[str] = []
    seen: set[Path] = set()
    for path in paths:
        real = Path(os.path.realpath(path))
        if real in seen:
            continue
        seen.add(real)
        try:
            sections = sections_with_key(path, old_key_id)
        except InvalidInputError as error:
            warnings.append(f"could not check {path} for the old key {old_key_id}: "
                            f"{error.message}")
            continue
        warnings += [
            f"access key {old_key_id} also appears in [{name}] of {path}; that section is left "
            "unchanged and stops working once the old key is retired"
            for name in sections if (real, name) != written
        ]
    return warnings


def keys_after(
    plan: RotationPlan, new_key: NewAccessKey | None, *, retired: bool = True
) -> list[AccessKey]:
    spare_id = plan.spare_key.access_key_id if plan.spare_key else None
    old_id = plan.old_key.access_key_id
    after: list[AccessKey] = []
    for key in plan.before:
        if key.access_key_id == spare_id:
            continue
        if key.access_key_id == old_id and retired:
            if plan.retire == "delete":
                continue
            if plan.retire == "deactivate":
                key = key.with_status("Inactive")
        after.append(key)
    if new_key is not None:
        after.append(new_key.key.with_last_use(LastUse()))
    return after


def changed_keys(
    plan: RotationPlan, new_key: NewAccessKey | None, *, retired: bool = True
) -> list[str]:
    changed = [plan.spare_key.access_key_id] if plan.spare_key else []
    if new_key is not None:
        changed.append(new_key.key.access_key_id)
    if retired and plan.retire != "keep":
        changed.append(plan.old_key.access_key_id)
    return changed
