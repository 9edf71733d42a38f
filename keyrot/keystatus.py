"""Activating and deactivating access keys, with the lock-out check and before/after states."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from keyrot.errors import (
    InvalidInputError,
    KeyrotError,
    NotFoundError,
    PartialFailure,
    SafetyRefusal,
)
from keyrot.iam import IamService
from keyrot.models import AccessKey, Identity

Status = Literal["Active", "Inactive"]
ACTION_BY_STATUS: dict[str, str] = {"Active": "activate", "Inactive": "deactivate"}

Confirm = Callable[[str], bool]


@dataclass(frozen=True)
class Subject:
    """Whose keys a command acts on: a named user, or the caller when user_name is None."""

    user_name: str | None
    caller: Identity | None

    @property
    def label(self) -> str:
        if self.user_name is not None:
            return self.user_name
        assert self.caller is not None
        return f"{self.caller.label} (the caller, {self.caller.arn})"

    @property
    def display_name(self) -> str:
        """The user name for JSON documents: the caller's name, or "root" for root keys."""
        if self.user_name is not None:
            return self.user_name
        assert self.caller is not None
        return self.caller.user_name or ("root" if self.caller.is_root else self.caller.arn)

    def command_flag(self) -> str:
        return f" --user {self.user_name}" if self.user_name is not None else ""

    def caller_json(self) -> dict[str, str] | None:
        if self.caller is None:
            return None
        return {"Account": self.caller.account, "Arn": self.caller.arn}


@dataclass(frozen=True)
class StatusChange:
    """The request: set key_ids of one user to status."""

    user_name: str | None
    key_ids: tuple[str, ...]
    status: Status
    dry_run: bool
    force: bool


@dataclass(frozen=True)
class StatusReport:
    """Outcome of a status change: the keys before and after, and the IDs changed."""

    subject: Subject
    status: Status
    dry_run: bool
    requested: tuple[str, ...]
    before: list[AccessKey]
    after: list[AccessKey]
    changed: list[str]
    locks_out: str | None

    @property
    def action(self) -> str:
        return ACTION_BY_STATUS[self.status]

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "UserName": self.subject.display_name,
            "Action": self.action,
            "DryRun": self.dry_run,
            "Before": [key.to_json() for key in self.before],
            "After": [key.to_json() for key in self.after],
            "Changed": list(self.changed),
        }
        caller = self.subject.caller_json()
        if caller is not None:
            document["Caller"] = caller
        return document


def resolve_subject(service: IamService, user_name: str | None) -> Subject:
    """Name whose keys are acted on, asking STS who the caller is when no user is given."""
    if user_name is not None:
        return Subject(user_name=user_name, caller=None)

    caller = service.caller()
    if caller.user_name is None and not caller.is_root:
        # An assumed role or a federated session has no access keys of its own, and IAM would
        # return a confusing NoSuchEntity for the session's temporary key.
        raise InvalidInputError(
            f"the caller {caller.arn} is not an IAM user, so it has no access keys of its own; "
            "pass --user NAME to name the user whose keys to act on"
        )
    return Subject(user_name=None, caller=caller)


def change_status(
    service: IamService, request: StatusChange, confirm: Confirm | None
) -> StatusReport:
    """Set the requested keys to request.status, skipping keys that already have it.

    Deactivating the key that signs the requests locks the caller out. It therefore needs
    request.force or a yes from confirm, which is None when there is no terminal to ask on.
    """
    subject = resolve_subject(service, request.user_name)
    before = service.with_last_use(service.list_keys(request.user_name))
    check_keys_exist(subject, before, request.key_ids)

    targets = [key for key in before if key.access_key_id in request.key_ids]
    to_change = [key.access_key_id for key in targets if key.status != request.status]
    signing_key = service.signing_credentials().access_key_id
    locks_out = signing_key if request.status == "Inactive" and signing_key in to_change else None

    if locks_out is not None and not request.dry_run and not request.force:
        _confirm_lock_out(locks_out, confirm)

    if request.dry_run:
        after = _apply_locally(before, to_change, request.status)
    else:
        # The signing key goes last, because no request can be signed with it once it is Inactive.
        ordered = sorted(to_change, key=lambda key_id: key_id == signing_key)
        _apply(service, subject, ordered, request.status)
        after = _state_after(service, request, before, to_change, locks_out)

    return StatusReport(
        subject=subject,
        status=request.status,
        dry_run=request.dry_run,
        requested=request.key_ids,
        before=before,
        after=after,
        changed=to_change,
        locks_out=locks_out,
    )


def check_keys_exist(subject: Subject, keys: list[AccessKey], key_ids: tuple[str, ...]) -> None:
    """Raise NotFoundError naming every key ID in key_ids that is not among keys."""
    known = {key.access_key_id for key in keys}
    missing = [key_id for key_id in key_ids if key_id not in known]
    if not missing:
        return

    owned = f"that user's keys are {', '.join(sorted(known))}" if known else (
        "that user has no access keys"
    )
    hint = " (pass --user NAME for another user's key)" if subject.user_name is None else ""
    raise NotFoundError(
        f"access key {', '.join(missing)} not found for {subject.label}; {owned}{hint}"
    )


def _confirm_lock_out(key_id: str, confirm: Confirm | None) -> None:
    warning = (
        f"access key {key_id} is the key this command is signed with; deactivating it locks "
        "these credentials (and any profile that holds them) out of AWS"
    )
    if confirm is None:
        raise SafetyRefusal(f"{warning}. Nothing was changed; pass --force to deactivate it anyway")
    if not confirm(f"{warning}. Deactivate it anyway?"):
        raise SafetyRefusal(f"{warning}. Nothing was changed")


def _apply(service: IamService, subject: Subject, key_ids: list[str], status: Status) -> None:
    done: list[str] = []
    for key_id in key_ids:
        try:
            service.set_status(subject.user_name, key_id, status)
        except KeyrotError as error:
            if not done:
                raise
            raise _partial_failure(subject, status, done, key_ids[len(done):], error) from None
        done.append(key_id)


def _partial_failure(
    subject: Subject, status: Status, done: list[str], left: list[str], error: KeyrotError
) -> PartialFailure:
    action = ACTION_BY_STATUS[status]
    undo = ACTION_BY_STATUS["Active" if status == "Inactive" else "Inactive"]
    flag = subject.command_flag()
    return PartialFailure(
        f"{action} stopped part way: {error.message}",
        details=[
            f"set to {status}: {', '.join(done)}",
            f"not changed: {', '.join(left)}",
            f"to finish: keyrot {action}{flag} {' '.join(left)}",
            f"to undo: keyrot {undo}{flag} {' '.join(done)}",
        ],
    )


def _state_after(
    service: IamService,
    request: StatusChange,
    before: list[AccessKey],
    changed: list[str],
    locks_out: str | None,
) -> list[AccessKey]:
    if locks_out is not None or not changed:
        # With the signing key now Inactive, IAM would refuse a fresh listing.
        return _apply_locally(before, changed, request.status)

    last_use = {key.access_key_id: key.last_use for key in before}
    listed = service.list_keys(request.user_name)
    return [
        key.with_last_use(use) if (use := last_use.get(key.access_key_id)) else key
        for key in listed
    ]


def _apply_locally(keys: list[AccessKey], changed: list[str], status: Status) -> list[AccessKey]:
    return [key.with_status(status) if key.access_key_id in changed else key for key in keys]
