"""The rotate workflow's request, plan and report, and the checks made before any request.

check_local_state reads the profile or environment that contains the key being replaced and
chooses the new key's destination; nothing in this module sends a request to AWS.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from keyrot.errors import InvalidInputError, PartialFailure, SafetyRefusal
from keyrot.keystatus import Subject
from keyrot.models import AccessKey, LastUse, NewAccessKey
from keyrot.secret_destinations import Destination, OutputDestination, ProfileDestination

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

    @property
    def profile(self) -> str:
        return self.profile_option or os.environ.get("AWS_PROFILE") or "default"


@dataclass(frozen=True)
class LocalState:
    """The key's profile or environment and the new key's destination, read before any request."""

    destination: Destination
    scope: str
    own_key_id: str | None
    profile_flag: str
    warnings: list[str] = field(default_factory=list)


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

    def finish_command(self) -> str:
        """Return the command that retires the old key by hand."""
        key_id = self.old_key.access_key_id
        user = self.subject.command_flag()
        if self.retire == "delete":
            user_option = f" --user-name {self.subject.user_name}" if self.subject.user_name else ""
            profile = self.profile_flag
            return f"aws iam delete-access-key{profile}{user_option} --access-key-id {key_id}"
        # Without a profile, a self-rotation's finishing command may be signed with the old key
        # itself (still in the environment variables), which deactivate refuses without --force.
        force = " --force" if self.self_rotation and not self.profile_flag else ""
        return f"keyrot deactivate{self.profile_flag}{user}{force} {key_id}"


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
        return _state_for_user(request)
    if request.profile_option is None and os.environ.get("AWS_ACCESS_KEY_ID"):
        return _state_for_environment(request)
    return _state_for_profile(request)


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
    return LocalState(destination=destination, scope=f"user:{request.user_name}",
                      own_key_id=None, profile_flag="")


def _state_for_environment(request: RotationRequest) -> LocalState:
    key_id = os.environ.get("AWS_ACCESS_KEY_ID", "")
    if os.environ.get("AWS_SESSION_TOKEN") or os.environ.get("AWS_SECURITY_TOKEN"):
        raise SafetyRefusal(
            f"the key {key_id} in AWS_ACCESS_KEY_ID comes with a session token, so it is a "
            "temporary STS credential, which cannot be rotated; nothing was changed"
        )
    if request.destination is None and not request.secret_output:
        raise SafetyRefusal(
            f"the key {key_id} comes from the environment variables AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, so keyrot has nowhere to store a new one; nothing was "
            "changed. Pass --profile NAME to rotate a profile's key, or give a destination: "
            "--output json, --show-secret, --env-file PATH or --save-profile NAME"
        )
    destination = request.destination or OutputDestination()
    return LocalState(destination=destination, scope=f"key:{key_id}", own_key_id=key_id,
                      profile_flag="")


def _state_for_profile(request: RotationRequest) -> LocalState:
    from keyrot.credentials import find_profile_key, sections_with_key

    if request.destination is not None:
        raise InvalidInputError(
            "--save-profile, --credentials-file and --env-file choose where another user's new "
            "key goes; a profile's own key is always saved back into that profile"
        )
    profile = request.profile
    found = find_profile_key(profile)
    if found.has_session_token:
        raise SafetyRefusal(
            f"profile {profile} in {found.path} contains temporary STS credentials (it has a "
            "session token), which cannot be rotated; rotate the long-term key they came from "
            "instead. Nothing was changed"
        )

    warnings = [
        f"access key {found.access_key_id} also appears in [{name}] of {found.path}; that "
        "section is left unchanged and stops working once the old key is retired"
        for name in sections_with_key(found.path, found.access_key_id)
        if name != found.section
    ]
    return LocalState(
        destination=ProfileDestination(found.path, found.section,
                                       expected_access_key_id=found.access_key_id),
        scope=f"profile:{found.path.resolve()}:{found.section}",
        own_key_id=found.access_key_id,
        profile_flag=f" --profile {profile}",
        warnings=warnings,
    )


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
