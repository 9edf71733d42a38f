"""Deleting named access keys of one user, with the keys shown before and after.

Deleting cannot be undone, so only Inactive keys are deleted unless the request forces it; an
Active key is usually still in use somewhere. The key that signs the requests is deleted last,
because no request can be signed with it afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keyrot.errors import KeyrotError, PartialFailure, SafetyRefusal
from keyrot.iam import IamService
from keyrot.keystatus import Subject, check_keys_exist, resolve_subject
from keyrot.models import AccessKey


@dataclass(frozen=True)
class DeleteRequest:
    user_name: str | None
    key_ids: tuple[str, ...]
    dry_run: bool
    force: bool


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


def delete_keys(service: IamService, request: DeleteRequest) -> DeleteReport:
    """Delete the requested keys of one user; Active ones only with request.force."""
    subject = resolve_subject(service, request.user_name)
    before = service.with_last_use(service.list_keys(request.user_name))
    check_keys_exist(subject, before, request.key_ids)

    targets = [key for key in before if key.access_key_id in request.key_ids]
    active = [key.access_key_id for key in targets if key.status == "Active"]
    if active and not request.force:
        raise _active_refusal(subject, active)

    signing_key = service.signing_credentials().access_key_id
    # The signing key goes last, because no request can be signed with it once it is deleted.
    ordered = sorted((key.access_key_id for key in targets),
                     key=lambda key_id: key_id == signing_key)
    signing_key_deleted = signing_key if signing_key in ordered else None

    if not request.dry_run:
        _delete(service, subject, ordered)
    after = _state_after(service, request, before, ordered, signing_key_deleted)
    return DeleteReport(subject=subject, dry_run=request.dry_run, before=before, after=after,
                        deleted=ordered, signing_key_deleted=signing_key_deleted)


def _active_refusal(subject: Subject, active: list[str]) -> SafetyRefusal:
    flag = subject.command_flag()
    return SafetyRefusal(
        f"access key {', '.join(active)} of {subject.label} is Active and may still be in use; "
        f"nothing was deleted. Deactivate it first (keyrot deactivate{flag} {' '.join(active)}) "
        "and delete it once nothing breaks, or pass --force to delete it now"
    )


def _delete(service: IamService, subject: Subject, key_ids: list[str]) -> None:
    done: list[str] = []
    for key_id in key_ids:
        try:
            service.delete_key(subject.user_name, key_id)
        except KeyrotError as error:
            if not done:
                raise
            left = key_ids[len(done):]
            raise PartialFailure(
                f"delete stopped part way: {error.message}",
                details=[
                    f"deleted: {', '.join(done)}",
                    f"not deleted: {', '.join(left)}",
                    f"to finish: keyrot delete{subject.command_flag()} --force {' '.join(left)}",
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
