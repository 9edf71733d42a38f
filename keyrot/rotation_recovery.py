"""Finishing or rolling back a rotation that a crash, a kill or a lost connection interrupted.

The journal records how far the earlier run got. If the destination already contains the new key,
the job is finished: the old key is retired as planned. Otherwise the new key is deleted again and
the run goes on with a fresh rotation. That is always safe. The new key's secret exists only in
the journal and the destination, so a key missing from the destination cannot be in use. The old
key is retired only after the save, so it is still in place. This holds for a destination
that did not exist before the rotation too. A dry run reports which of the two a real run would
do, changing nothing, and plans as if it had been done.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from keyrot import journal
from keyrot.errors import SafetyRefusal
from keyrot.iam import IamService
from keyrot.keystatus import Subject
from keyrot.models import AccessKey, NewAccessKey, iso_utc
from keyrot.rotation import retire_old_key, verify_new_key
from keyrot.rotation_plan import (
    RETIRE_RESULTS,
    Interaction,
    LocalState,
    RotationPlan,
    RotationReport,
    RotationRequest,
    changed_keys,
    keys_after,
)
from keyrot.secret_destinations import Destination, OutputDestination, destination_from_record


@dataclass(frozen=True)
class RecoveryPreview:
    """A dry run's forecast of how the real run handles an interrupted rotation.

    When the real run would finish the earlier rotation and stop, report is the dry run's report.
    Otherwise, deleted_key_ids names the keys the real run would delete before a fresh rotation.
    """

    report: RotationReport | None
    deleted_key_ids: frozenset[str] = frozenset()


def recover(
    service: IamService,
    iam: IamService,
    entry: journal.Journal,
    subject: Subject,
    request: RotationRequest,
    local: LocalState,
    interaction: Interaction,
) -> RotationReport | None:
    """Finish or roll back the rotation that entry records.

    Return the report when the earlier job was finished. Return None when it was rolled back or
    never created a key, because the caller then goes on with a fresh rotation.
    """
    reporter = interaction.reporter
    keys = iam.list_keys(entry.user_name)
    if entry.stage == "creating":
        _recover_before_create(entry, subject, keys, local, interaction)
        return None

    destination = destination_from_record(entry.destination)
    new_key = _journal_key(entry, keys)
    plan = _recovery_plan(entry, subject, keys, destination, local)
    listed = {key.access_key_id for key in keys}

    if new_key.key.access_key_id not in listed:
        _forget_missing_key(entry, destination, new_key, interaction)
        return None
    if _destination_has_new_key(service, plan, new_key, request, interaction):
        return _finish(iam, plan, new_key, keys, entry, interaction)

    iam.delete_key(entry.user_name, new_key.key.access_key_id)
    journal.remove(entry.scope)
    reporter.note(
        f"rolled back an interrupted rotation of {subject.label}: deleted the new key "
        f"{new_key.key.access_key_id}, because {_rollback_reason(destination, entry)}"
    )
    return None


def preview_recovery(
    iam: IamService,
    entry: journal.Journal,
    subject: Subject,
    request: RotationRequest,
    local: LocalState,
    interaction: Interaction,
) -> RecoveryPreview:
    """Report what recover would do with entry, changing nothing; refuse where it would refuse."""
    path = journal.journal_path(entry.scope)
    found = f"dry run: the journal {path} records an interrupted rotation of {subject.label}"
    keys = iam.list_keys(entry.user_name)
    if entry.stage == "creating":
        unknown = _unknown_keys(entry, keys)
        if unknown:
            raise _unknown_key_refusal(entry, subject, unknown, local)
        interaction.reporter.note(f"{found} that stopped before IAM created a key; a real run "
                                  "removes the journal, with nothing to undo")
        return RecoveryPreview(report=None)

    destination = destination_from_record(entry.destination)
    new_key = _journal_key(entry, keys)
    key_id = new_key.key.access_key_id
    if key_id not in {key.access_key_id for key in keys}:
        if destination.contains(key_id):
            raise _missing_key_refusal(entry, destination, key_id)
        interaction.reporter.note(f"{found}; its new key {key_id} is no longer listed by IAM, "
                                  "so a real run removes the journal, with nothing to undo")
        return RecoveryPreview(report=None)

    plan = _recovery_plan(entry, subject, keys, destination, local)
    contains = destination.contains(key_id)
    if contains or (contains is None and request.secret_output):
        where = (f"{destination.describe()} contains the new key {key_id}" if contains
                 else f"this run's output would carry the new key {key_id} once it verifies")
        interaction.reporter.note(f"{found}; a real run finishes it and creates no other key: "
                                  f"{where}")
        return RecoveryPreview(report=_preview_finish(plan, new_key, keys, interaction))

    interaction.reporter.note(
        f"{found}; a real run rolls it back first by deleting the new key {key_id}, because "
        f"{_rollback_reason(destination, entry)}, and then rotates as planned below"
    )
    return RecoveryPreview(report=None, deleted_key_ids=frozenset({key_id}))


def _preview_finish(
    plan: RotationPlan, new_key: NewAccessKey, keys: list[AccessKey], interaction: Interaction
) -> RotationReport:
    old_id = plan.old_key.access_key_id
    retired = any(key.access_key_id == old_id for key in keys)
    if retired:
        interaction.reporter.note(f"dry run: the old key {old_id} would be "
                                  f"{RETIRE_RESULTS[plan.retire]}; nothing was changed")
    else:
        interaction.reporter.note(f"dry run: the old key {old_id} is already gone; nothing "
                                  "was changed")
    return RotationReport(
        plan=plan,
        dry_run=True,
        new_key=None,
        after=keys_after(plan, new_key, retired=retired),
        changed=changed_keys(plan, None, retired=retired),
        recovery="would finish",
    )


def _recover_before_create(
    entry: journal.Journal,
    subject: Subject,
    keys: list[AccessKey],
    local: LocalState,
    interaction: Interaction,
) -> None:
    unknown = _unknown_keys(entry, keys)
    journal.remove(entry.scope)
    if not unknown:
        interaction.reporter.note(
            f"an earlier rotation of {subject.label} stopped before IAM created a key; "
            "nothing to undo"
        )
        return
    raise _unknown_key_refusal(entry, subject, unknown, local)


def _unknown_keys(entry: journal.Journal, keys: list[AccessKey]) -> list[AccessKey]:
    return [key for key in keys if key.access_key_id not in entry.existing_key_ids]


def _unknown_key_refusal(
    entry: journal.Journal, subject: Subject, unknown: list[AccessKey], local: LocalState
) -> SafetyRefusal:
    user_option = f" --user-name {subject.user_name}" if subject.user_name else ""
    options = f"{local.profile_flag}{local.connection_flags}{user_option}"
    return SafetyRefusal(
        f"an earlier rotation of {subject.label} was interrupted while IAM created a key, so "
        "that key's secret was never stored; nothing was changed now",
        details=[
            *[f"unknown key: {key.access_key_id} ({key.status}), created "
              f"{iso_utc(key.create_date)}; the interrupted rotation started at "
              f"{entry.started_at}" for key in unknown],
            "if that key is the one keyrot created, it cannot be used; delete it with "
            f"aws iam delete-access-key{options} --access-key-id {unknown[0].access_key_id}, "
            "then run keyrot rotate again",
        ],
    )


def _journal_key(entry: journal.Journal, keys: list[AccessKey]) -> NewAccessKey:
    assert entry.new_access_key_id is not None and entry.new_secret_access_key is not None
    listed = {key.access_key_id: key for key in keys}
    key = listed.get(entry.new_access_key_id) or AccessKey(
        user_name=entry.user_name or "",
        access_key_id=entry.new_access_key_id,
        status="Active",
        create_date=keys[0].create_date if keys else _epoch(),
    )
    return NewAccessKey(key=key, secret_access_key=entry.new_secret_access_key)


def _recovery_plan(
    entry: journal.Journal,
    subject: Subject,
    keys: list[AccessKey],
    destination: Destination,
    local: LocalState,
) -> RotationPlan:
    listed = {key.access_key_id: key for key in keys}
    old_key = listed.get(entry.old_access_key_id) or AccessKey(
        user_name=entry.user_name or "",
        access_key_id=entry.old_access_key_id,
        status="Deleted",
        create_date=_epoch(),
    )
    before = [key for key in keys if key.access_key_id != entry.new_access_key_id]
    return RotationPlan(
        subject=subject,
        self_rotation=entry.scope.startswith(("profile:", "key:")),
        old_key=old_key,
        spare_key=None,
        destination=destination,
        scope=entry.scope,
        retire=entry.retire,  # type: ignore[arg-type]
        before=before,
        profile_flag=local.profile_flag,
        rerun_command=local.rerun_command,
        connection_flags=local.connection_flags,
    )


def _destination_has_new_key(
    service: IamService,
    plan: RotationPlan,
    new_key: NewAccessKey,
    request: RotationRequest,
    interaction: Interaction,
) -> bool:
    contains = plan.destination.contains(new_key.key.access_key_id)
    if contains is not None:
        return contains

    # The command output is the destination: the secret reaches the user only if this run
    # prints it, and only a key that verifies is worth printing.
    if not request.secret_output:
        return False
    verify_new_key(service, plan, new_key, request.verify_timeout, interaction.sleep)
    return True


def _finish(
    iam: IamService,
    plan: RotationPlan,
    new_key: NewAccessKey,
    keys: list[AccessKey],
    entry: journal.Journal,
    interaction: Interaction,
) -> RotationReport:
    old_listed = any(key.access_key_id == entry.old_access_key_id for key in keys)
    retire_error = retire_old_key(iam, plan, interaction.reporter) if old_listed else None
    if retire_error is None:
        journal.remove(entry.scope)

    interaction.reporter.note(
        f"finished an interrupted rotation of {plan.subject.label}: the new key "
        f"{new_key.key.access_key_id} is in {plan.destination.describe()}"
    )
    retired = retire_error is None
    return RotationReport(
        plan=plan,
        dry_run=False,
        new_key=new_key,
        after=keys_after(plan, new_key, retired=retired),
        changed=changed_keys(plan, new_key, retired=retired),
        recovery="finished",
        retire_error=retire_error,
    )


def _forget_missing_key(
    entry: journal.Journal,
    destination: Destination,
    new_key: NewAccessKey,
    interaction: Interaction,
) -> None:
    key_id = new_key.key.access_key_id
    if destination.contains(key_id):
        raise _missing_key_refusal(entry, destination, key_id)
    journal.remove(entry.scope)
    interaction.reporter.note(
        f"an interrupted rotation had created {key_id}, which IAM no longer lists; nothing to "
        "undo"
    )


def _missing_key_refusal(
    entry: journal.Journal, destination: Destination, key_id: str
) -> SafetyRefusal:
    return SafetyRefusal(
        f"{destination.describe()} contains the key {key_id} from an interrupted rotation, but "
        f"IAM no longer lists that key; the old key {entry.old_access_key_id} was not "
        f"retired. Put a working key into {destination.describe()}, then remove "
        f"{journal.journal_path(entry.scope)}"
    )


def _rollback_reason(destination: Destination, entry: journal.Journal) -> str:
    where = destination.describe()
    if isinstance(destination, OutputDestination):
        return f"{where} never carried it"
    if destination.contains(entry.old_access_key_id):
        return f"{where} still contains the old key {entry.old_access_key_id}"
    return f"{where} does not contain it, so nothing can be using it"


def _epoch() -> datetime:
    return datetime.fromtimestamp(0, UTC)
