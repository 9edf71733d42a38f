"""Choosing what a rotation replaces: the key to rotate, and an inactive spare to delete.

IAM allows two access keys per user, so a rotation either has room for the new key, may delete
the other key when it is inactive and the user agreed, or is refused before anything changes.
An active key other than the one being replaced is never touched.
"""

from __future__ import annotations

import shlex

from keyrot.errors import InvalidInputError, NotFoundError, SafetyRefusal
from keyrot.iam import IamService
from keyrot.keystatus import Subject
from keyrot.models import AccessKey, iso_utc
from keyrot.rotation_plan import (
    Interaction,
    LocalState,
    RotationPlan,
    RotationRequest,
    stale_key_warnings,
)


def plan_rotation(
    iam: IamService,
    subject: Subject,
    request: RotationRequest,
    local: LocalState,
    interaction: Interaction,
    recovered_key_ids: frozenset[str] = frozenset(),
) -> RotationPlan:
    """Plan the rotation; recovered_key_ids are keys a dry run's recovery would delete first."""
    listed = iam.list_keys(subject.user_name)
    before = iam.with_last_use([key for key in listed
                                if key.access_key_id not in recovered_key_ids])
    old_key = _key_to_replace(subject, before, request, local)
    for warning in stale_key_warnings(old_key.access_key_id, local.destination):
        interaction.reporter.warn(warning)

    spare = _spare_to_delete(subject, before, old_key, request, interaction)
    return RotationPlan(
        subject=subject,
        self_rotation=request.user_name is None,
        old_key=old_key,
        spare_key=spare,
        destination=local.destination,
        scope=local.scope,
        retire=request.retire,
        before=before,
        profile_flag=local.profile_flag,
        rerun_command=local.rerun_command,
        connection_flags=local.connection_flags,
    )


def check_not_signing_key(service: IamService, plan: RotationPlan) -> None:
    # A rotation of another user's key saves the new key elsewhere, so retiring the key that
    # signs this run would lock out the profile or variables it comes from.
    if plan.self_rotation or plan.retire == "keep":
        return
    signing = service.signing_credentials()
    if signing.access_key_id == plan.old_key.access_key_id:
        raise SafetyRefusal(
            f"access key {signing.access_key_id} signs this request ({signing.method}); "
            "rotating it with --user would retire it while its profile or variables keep "
            "using it. Nothing was changed; rotate it without --user, with --profile, so the "
            "new key is saved where it is used"
        )


def _key_to_replace(
    subject: Subject, keys: list[AccessKey], request: RotationRequest, local: LocalState
) -> AccessKey:
    by_id = {key.access_key_id: key for key in keys}
    owned = ", ".join(f"{key.access_key_id} ({key.status})" for key in keys) or "none"
    wanted = local.own_key_id or request.key_id

    if wanted is not None:
        if wanted not in by_id:
            raise NotFoundError(
                f"access key {wanted} not found for {subject.label}; that user's keys are: {owned}"
            )
        if request.key_id is not None and request.key_id != wanted:
            raise InvalidInputError(
                f"access key {request.key_id} is not the key being rotated ({wanted}); pass "
                "--user NAME to rotate another key"
            )
        return by_id[wanted]

    active = [key for key in keys if key.status == "Active"]
    if len(active) == 1:
        return active[0]
    if not keys:
        raise NotFoundError(f"{subject.label} has no access key to rotate")
    if len(active) == 2:
        raise _two_active_refusal(subject, keys, request)
    raise InvalidInputError(
        f"{subject.label} has keys {owned}; name the one to replace, for example "
        f"keyrot rotate --user {subject.user_name} {keys[0].access_key_id} ..."
    )


def _two_active_refusal(
    subject: Subject, keys: list[AccessKey], request: RotationRequest
) -> SafetyRefusal:
    # Naming one of the keys would not help: the other one is active and would have to go to
    # make room, and keyrot never retires an active key it does not replace.
    signer = f" --profile {shlex.quote(request.profile_option)}" if request.profile_option else ""
    return SafetyRefusal(
        f"{subject.label} has two active access keys, the most IAM allows, so keyrot cannot "
        "create a new one and will not retire an active key on its own. Nothing was changed; "
        f"deactivate the key that is no longer used (keyrot deactivate{signer}"
        f"{request.connection_flags()}"
        f"{subject.command_flag()} ACCESS_KEY_ID), then run keyrot rotate again",
        details=key_listing(keys),
    )


def _spare_to_delete(
    subject: Subject,
    keys: list[AccessKey],
    old_key: AccessKey,
    request: RotationRequest,
    interaction: Interaction,
) -> AccessKey | None:
    others = [key for key in keys if key.access_key_id != old_key.access_key_id]
    if not others:
        return None

    spare = others[0]
    listing = key_listing(keys)
    limit = (
        f"{subject.label} already has two access keys, the most IAM allows, so no new key can "
        "be created"
    )
    if spare.status == "Active":
        raise SafetyRefusal(
            f"{limit}; the other key {spare.access_key_id} is active and keyrot never touches an "
            "active key other than the one it replaces. Nothing was changed; deactivate and "
            "delete that key first if it is no longer used",
            details=listing,
        )
    if request.delete_inactive_key or request.assume_yes:
        return spare

    # The prompt shows the keys as the refusal's details do: indented, without a prefix.
    rows = "".join(f"\n  {line}" for line in listing)
    question = f"{limit}:{rows}\nDelete the inactive key {spare.access_key_id} to make room?"
    if interaction.confirm is None or request.dry_run:
        raise SafetyRefusal(
            f"{limit}. Nothing was changed; pass --delete-inactive-key to delete the inactive "
            f"key {spare.access_key_id} first",
            details=listing,
        )
    if not interaction.confirm(question):
        raise SafetyRefusal(f"{limit}. Nothing was changed")
    return spare


def key_listing(keys: list[AccessKey]) -> list[str]:
    """Return one line per key, its ID, status, creation and last use in aligned columns."""
    cells = [[key.access_key_id, key.status, f"created {iso_utc(key.create_date)}",
              _last_used(key)] for key in keys]
    widths = [max(len(row[column]) for row in cells) for column in range(3)]
    lines = []
    for row in cells:
        padded = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
        lines.append("  ".join([*padded, row[3]]))
    return lines


def _last_used(key: AccessKey) -> str:
    use = key.last_use
    last_used = "never used"
    if use is not None and use.date is not None:
        last_used = f"last used {iso_utc(use.date)}"
    if use is not None and use.service:
        last_used += f" ({use.service})"
    return last_used
