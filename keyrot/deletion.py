"""Deleting named access keys of one user, with the keys shown before and after.

Deleting cannot be undone, so only Inactive keys are deleted unless the request forces it; an
Active key is usually still in use somewhere. Deleting the key that signs the requests locks
its credentials out for good. Like deactivating it, it therefore needs force or a yes at a
prompt. It is deleted last, because no request can be signed with it afterwards.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from keyrot.errors import KeyrotError, PartialFailure, SafetyRefusal
from keyrot.iam import IamService
from keyrot.keystatus import Confirm, Subject, check_keys_exist, resolve_subject
from keyrot.models import AccessKey


@dataclass(frozen=True)
class DeleteRequest:
    user_name: str | None
    key_ids: tuple[str, ...]
    dry_run: bool
    force: bool
    # The --profile in use, repeated in the commands that messages suggest.
    profile: str | None = None


@dataclass(frozen=True)
class DeleteReport:
    subject: Subject
    dry_run: bool
    before: list[AccessKey]
    after: list[AccessKey]
    deleted: list[str]
    signing_key_deleted: str | None

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "UserName": self.subject.display_name,
            "Action": "delete",
            "DryRun": self.dry_run,
            "Before": [key.to_json() for key in self.before],
            "After": [key.to_json() for key in self.after],
            "Changed": list(self.deleted),
        }
        caller = self.subject.caller_json()
        if caller is not None:
            document["Caller"] = caller
        return document


def delete_keys(
    service: IamService, request: DeleteRequest, confirm: Confirm | None
) -> DeleteReport:
    """Delete the requested keys of one user; Active ones only with request.force.

    Deleting the key that signs the requests needs request.force or a yes from confirm, which
    is None when there is no terminal to ask on.
    """
    subject = resolve_subject(service, request.user_name)
    before = service.with_last_use(service.list_keys(request.user_name))
    check_keys_exist(subject, before, request.key_ids)

    targets = [key for key in before if key.access_key_id in request.key_ids]
    signing_key = service.signing_credentials().access_key_id
    flags = _command_flags(subject, request.profile)
    active = [key.access_key_id for key in targets
              if key.status == "Active" and key.access_key_id != signing_key]
    if active and not request.force:
        raise _active_refusal(subject, active, flags)

    # The signing key goes last, because no request can be signed with it once it is deleted.
    ordered = sorted((key.access_key_id for key in targets),
                     key=lambda key_id: key_id == signing_key)
    signing_key_deleted = signing_key if signing_key in ordered else None
    if signing_key_deleted is not None and not request.dry_run and not request.force:
        _confirm_lock_out(signing_key_deleted, confirm)

    if not request.dry_run:
        _delete(service, ordered, subject.user_name, flags)
    after = _state_after(service, request, before, ordered, signing_key_deleted)
    return DeleteReport(subject=subject, dry_run=request.dry_run, before=before, after=after,
                        deleted=ordered, signing_key_deleted=signing_key_deleted)


def _command_flags(subject: Subject, profile: str | None) -> str:
    """Return the --profile and --user options that suggested commands repeat."""
    profile_flag = f" --profile {shlex.quote(profile)}" if profile is not None else ""
    return profile_flag + subject.command_flag()


def _active_refusal(subject: Subject, active: list[str], flags: str) -> SafetyRefusal:
    return SafetyRefusal(
        f"access key {', '.join(active)} of {subject.label} is Active and may still be in use; "
        f"nothing was deleted. Deactivate it first (keyrot deactivate{flags} {' '.join(active)}) "
        "and delete it once nothing breaks, or pass --force to delete it now"
    )


def _confirm_lock_out(key_id: str, confirm: Confirm | None) -> None:
    warning = (
        f"access key {key_id} is the key this command is signed with; deleting it locks these "
        "credentials (and any profile that holds them) out of AWS for good"
    )
    if confirm is None:
        raise SafetyRefusal(f"{warning}. Nothing was deleted; pass --force to delete it anyway")
    if not confirm(f"{warning}. Delete it anyway?"):
        raise SafetyRefusal(f"{warning}. Nothing was deleted")


def _delete(service: IamService, key_ids: list[str], user_name: str | None, flags: str) -> None:
    done: list[str] = []
    for key_id in key_ids:
        try:
            service.delete_key(user_name, key_id)
        except KeyrotError as error:
            if not done:
                raise
            left = key_ids[len(done):]
            raise PartialFailure(
                f"delete stopped part way: {error.message}",
                details=[
                    f"deleted: {', '.join(done)}",
                    f"not deleted: {', '.join(left)}",
                    f"to finish: keyrot delete{flags} --force {' '.join(left)}",
                ],
            ) from None
        done.append(key_id)


def _state_after(
    service: IamService,
    request: DeleteRequest,
    before: list[AccessKey],
    deleted: list[str],
    signing_key_deleted: str | None,
) -> list[AccessKey]:
    if request.dry_run or signing_key_deleted is not None or not deleted:
        # With the signing key gone, IAM would reject a fresh listing.
        return [key for key in before if key.access_key_id not in deleted]

    last_use = {key.access_key_id: key.last_use for key in before}
    return [
        key.with_last_use(use) if (use := last_use.get(key.access_key_id)) else key
        for key in service.list_keys(request.user_name)
    ]
