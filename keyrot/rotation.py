"""The rotate workflow as explicit steps, each with its rollback.

1. Plan, changing nothing: find the key being replaced and where its successor will be stored,
   check the two-key limit, and finish or roll back an interrupted earlier rotation.
2. Create the new key and store its secret in the recovery journal before anything else.
3. Verify: STS GetCallerIdentity signed with the new key must name the same user.
4. Save the new key to its destination.
5. Retire the old key: deactivate it, delete it, or keep it.
6. Remove the journal.

A failure in steps 2 to 4 deletes the new key again (exit 5, nothing changed). A failure in
step 5 leaves both keys working and is reported with the command that finishes the job (exit 6).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

from keyrot import journal
from keyrot.aws_errors import CREDENTIALS_HINT
from keyrot.errors import (
    AwsRequestError,
    CredentialsError,
    KeyrotError,
    NotFoundError,
    PartialFailure,
    SafetyRefusal,
)
from keyrot.iam import IamService
from keyrot.keystatus import Subject
from keyrot.mfa import mfa_serial, mfa_session
from keyrot.models import Identity, NewAccessKey, iso_utc
from keyrot.rotation_keys import check_not_signing_key, plan_rotation
from keyrot.rotation_plan import (
    RETIRE_RESULTS,
    Interaction,
    LocalState,
    Reporter,
    RotationPlan,
    RotationReport,
    RotationRequest,
    changed_keys,
    keys_after,
)
from keyrot.secret_destinations import Destination, ProfileDestination

logger = logging.getLogger(__name__)

FIRST_VERIFY_DELAY = 0.5
MAX_VERIFY_DELAY = 8.0


def rotate(
    service: IamService, request: RotationRequest, local: LocalState, interaction: Interaction
) -> RotationReport:
    """Rotate the key, or finish an interrupted rotation found in the journal."""
    serial = mfa_serial(service)
    code = _mfa_code(serial, request, interaction) if serial else None
    if request.mfa_code and not serial:
        interaction.reporter.warn("--mfa-code is ignored because the profile has no mfa_serial")
    _check_signing_key(service, local)

    caller = service.caller()
    if request.user_name is not None:
        # User names repeat across accounts; a file path or key ID does not.
        local = replace(local, scope=f"{local.scope}@{caller.account}")
    iam = mfa_session(service, serial, code) if serial and code else service
    subject = _subject(caller, request)
    if caller.is_root:
        interaction.reporter.warn(
            "the caller is the account root; AWS discourages root access keys: use an IAM user "
            "or role for this work, and delete the root access key when you can"
        )

    if request.dry_run:
        return _plan_or_recover(service, iam, subject, request, local, interaction, serial)
    with journal.rotation_lock(local.scope):
        return _plan_or_recover(service, iam, subject, request, local, interaction, serial)


def _plan_or_recover(
    service: IamService,
    iam: IamService,
    subject: Subject,
    request: RotationRequest,
    local: LocalState,
    interaction: Interaction,
    serial: str | None,
) -> RotationReport:
    from keyrot.rotation_recovery import preview_recovery, recover

    earlier = journal.load(local.scope)
    recovered_key_ids: frozenset[str] = frozenset()
    if earlier is not None and request.dry_run:
        preview = preview_recovery(iam, earlier, subject, request, local, interaction)
        if preview.report is not None:
            return preview.report
        recovered_key_ids = preview.deleted_key_ids
    elif earlier is not None:
        finished = recover(service, iam, earlier, subject, request, local, interaction)
        if finished is not None:
            return finished

    plan = plan_rotation(iam, subject, request, local, interaction, recovered_key_ids)
    check_not_signing_key(service, plan)
    if request.dry_run:
        return _dry_run_report(plan)
    return _execute(service, iam, plan, request, interaction, uses_mfa=serial is not None)


def _mfa_code(serial: str | None, request: RotationRequest, interaction: Interaction) -> str:
    if request.mfa_code:
        return request.mfa_code
    if interaction.ask_mfa_code is None:
        raise CredentialsError(
            f"this profile requires MFA (mfa_serial {serial}) and there is no terminal to ask "
            "for a code on; pass --mfa-code CODE"
        )
    return interaction.ask_mfa_code(f"MFA code for {serial}")


def _check_signing_key(service: IamService, local: LocalState) -> None:
    if local.own_key_id is None:
        return
    signing = service.signing_credentials()
    if signing.access_key_id != local.own_key_id:
        raise SafetyRefusal(
            f"requests are signed with {signing.access_key_id} (from {signing.method}), not with "
            f"{local.own_key_id} from {local.destination.describe()}; keyrot rotates only the "
            "key that signs its requests. Check the profile's credential_process, role_arn or "
            "sso settings"
        )


def _subject(caller: Identity, request: RotationRequest) -> Subject:
    if request.user_name is not None:
        return Subject(user_name=request.user_name, caller=caller)
    if not caller.is_root and caller.user_name is None:
        raise SafetyRefusal(
            f"the caller {caller.arn} is not an IAM user or the account root, so it has no "
            "access key to rotate"
        )
    # An IAM user's own name is sent explicitly, and a caller ARN with a path such as
    # user/team/Bob means UserName Bob. The root sends no UserName, which IAM reads as the caller.
    return Subject(user_name=caller.user_name, caller=caller)


def _dry_run_report(plan: RotationPlan) -> RotationReport:
    after = keys_after(plan, None)
    return RotationReport(plan=plan, dry_run=True, new_key=None, after=after,
                          changed=changed_keys(plan, None))


def _execute(
    service: IamService,
    iam: IamService,
    plan: RotationPlan,
    request: RotationRequest,
    interaction: Interaction,
    *,
    uses_mfa: bool,
) -> RotationReport:
    reporter = interaction.reporter
    if plan.spare_key is not None:
        iam.delete_key(plan.subject.user_name, plan.spare_key.access_key_id)
        reporter.note(f"deleted the inactive key {plan.spare_key.access_key_id} to make room")

    new_key = _create_key(iam, plan)
    try:
        saved_path, retire_error = _verify_save_retire(
            service, iam, plan, new_key, request, interaction, uses_mfa=uses_mfa
        )
    except KeyboardInterrupt:
        reporter.warn(
            f"interrupted after creating {new_key.key.access_key_id}; run {plan.rerun_command} "
            "to finish or roll back this rotation from its journal "
            f"{journal.journal_path(plan.scope)}"
        )
        raise

    return RotationReport(
        plan=plan,
        dry_run=False,
        new_key=new_key,
        after=keys_after(plan, new_key, retired=retire_error is None),
        changed=changed_keys(plan, new_key, retired=retire_error is None),
        saved_path=saved_path,
        retire_error=retire_error,
    )


def _verify_save_retire(
    service: IamService,
    iam: IamService,
    plan: RotationPlan,
    new_key: NewAccessKey,
    request: RotationRequest,
    interaction: Interaction,
    *,
    uses_mfa: bool,
) -> tuple[Path | None, PartialFailure | None]:
    reporter = interaction.reporter
    attempts = _verify_or_roll_back(service, iam, plan, new_key, request, interaction)
    reporter.note(f"created {new_key.key.access_key_id}; it verified after {attempts} "
                  f"attempt{'s' if attempts != 1 else ''}")

    saved_path = _save_or_roll_back(iam, plan, new_key, reporter)
    # With MFA the old key is retired through the MFA session, because the new key alone cannot
    # meet an MFA condition and a code cannot be used twice. Another user's new key is not the
    # caller's, so --user rotations retire with the caller's credentials.
    signer = iam
    if plan.self_rotation and not uses_mfa:
        signer = service.signed_with(new_key.key.access_key_id, new_key.secret_access_key)
    retire_error = retire_old_key(signer, plan, reporter)
    if retire_error is None:
        journal.remove(plan.scope)
    return saved_path, retire_error


def _create_key(iam: IamService, plan: RotationPlan) -> NewAccessKey:
    entry = journal.Journal(
        scope=plan.scope,
        stage="creating",
        user_name=plan.subject.user_name,
        old_access_key_id=plan.old_key.access_key_id,
        retire=plan.retire,
        destination=plan.destination.to_record(),
        started_at=iso_utc(datetime.now(UTC)) or "",
        existing_key_ids=[key.access_key_id for key in plan.before
                          if key is not plan.spare_key],
    )
    journal.save(entry)

    try:
        new_key = iam.create_key(plan.subject.user_name)
    except AwsRequestError:
        # The request may have reached IAM; the journal lets the next run look for the key.
        raise
    except KeyrotError:
        journal.remove(plan.scope)
        raise

    try:
        journal.save(_with_new_key(entry, new_key))
    except KeyrotError as error:
        roll_back(iam, plan, new_key, error)
    return new_key


def _with_new_key(entry: journal.Journal, new_key: NewAccessKey) -> journal.Journal:
    return journal.Journal(
        **{
            **entry.__dict__,
            "stage": "created",
            "new_access_key_id": new_key.key.access_key_id,
            "new_secret_access_key": new_key.secret_access_key,
        }
    )


def _verify_or_roll_back(
    service: IamService,
    iam: IamService,
    plan: RotationPlan,
    new_key: NewAccessKey,
    request: RotationRequest,
    interaction: Interaction,
) -> int:
    try:
        return verify_new_key(service, plan, new_key, request.verify_timeout, interaction.sleep)
    except KeyrotError as error:
        roll_back(iam, plan, new_key, error)


def verify_new_key(
    service: IamService,
    plan: RotationPlan,
    new_key: NewAccessKey,
    timeout: float,
    sleep: Callable[[float], None],
) -> int:
    """Poll STS GetCallerIdentity signed with the new key until it names the same user.

    IAM takes seconds to accept a new key everywhere, so rejected credentials are retried with
    a doubling delay until timeout seconds have passed. Return the number of attempts.
    """
    key_id = new_key.key.access_key_id
    checker = service.signed_with(key_id, new_key.secret_access_key)
    deadline = time.monotonic() + timeout
    delay = FIRST_VERIFY_DELAY
    attempts = 0

    while True:
        attempts += 1
        try:
            identity = checker.caller()
        except (CredentialsError, AwsRequestError) as error:
            logger.info("verify attempt %d of %s failed: %s", attempts, key_id, error.message)
            if time.monotonic() + delay > deadline:
                raise NewKeyNotAccepted(
                    f"IAM did not accept the new key {key_id} within --verify-timeout "
                    f"{timeout:g} seconds ({attempts} attempts of STS GetCallerIdentity; last "
                    f"answer: {_rejection(error)})",
                    advice="try a longer --verify-timeout",
                ) from None
            sleep(delay)
            delay = min(delay * 2, MAX_VERIFY_DELAY)
            continue

        _check_same_user(plan.subject, identity, key_id)
        return attempts


class NewKeyNotAccepted(SafetyRefusal):
    """The new key was still rejected when --verify-timeout ran out; advice names the next step."""

    def __init__(self, reason: str, *, advice: str) -> None:
        super().__init__(f"{reason}; {advice}")
        self.reason = reason
        self.advice = advice


def _rejection(error: KeyrotError) -> str:
    # The translated error ends with advice about the caller's own credentials, which does not
    # apply to a key that this run has just created.
    message = error.message.removesuffix(f"; the credentials were rejected: {CREDENTIALS_HINT}")
    return message.removesuffix(f"; {CREDENTIALS_HINT}")


def _check_same_user(subject: Subject, identity: Identity, key_id: str) -> None:
    if subject.user_name is None:
        assert subject.caller is not None
        same = identity.arn == subject.caller.arn
    else:
        same = identity.user_name == subject.user_name
    if not same:
        raise SafetyRefusal(
            f"the new key {key_id} signs as {identity.arn}, not as {subject.label}"
        )


def _save_or_roll_back(
    iam: IamService, plan: RotationPlan, new_key: NewAccessKey, reporter: Reporter
) -> Path | None:
    try:
        result = plan.destination.save(new_key)
    except KeyrotError as error:
        roll_back(iam, plan, new_key, error)

    if result.warning:
        reporter.warn(result.warning)
    if result.path is not None:
        reporter.note(f"saved the new key to {_saved_where(plan.destination, result.path)}")
    return result.path


def _saved_where(destination: Destination, path: Path) -> str:
    if isinstance(destination, ProfileDestination):
        return f"[{destination.section}] in {path}"
    return str(path)


def roll_back(
    iam: IamService, plan: RotationPlan, new_key: NewAccessKey, cause: KeyrotError
) -> NoReturn:
    """Delete the new key after cause stopped the rotation, then raise the matching error."""
    key_id = new_key.key.access_key_id
    try:
        iam.delete_key(plan.subject.user_name, key_id)
    except KeyrotError as error:
        user_option = f" --user-name {plan.subject.user_name}" if plan.subject.user_name else ""
        raise PartialFailure(
            f"{cause.message}; deleting the new key {key_id} again also failed: {error.message}",
            details=[
                f"orphan key: {key_id} of {plan.subject.label} (its secret is in the recovery "
                f"journal {journal.journal_path(plan.scope)}, and nowhere else)",
                f"old key: {plan.old_key.access_key_id}, unchanged and still active",
                f"to finish: aws iam delete-access-key{plan.profile_flag}"
                f"{plan.connection_flags}{user_option} "
                f"--access-key-id {key_id}, or run {plan.rerun_command} to roll back",
            ],
        ) from None

    journal.remove(plan.scope)
    spare = plan.spare_key
    reason, advice = cause.message, ""
    if isinstance(cause, NewKeyNotAccepted):
        reason, advice = cause.reason, f"; {cause.advice}"
    removed = ""
    if spare is not None:
        removed = (f"; the inactive key {spare.access_key_id}, deleted to make room, stays "
                   "deleted")
    raise SafetyRefusal(
        f"{reason}; the new key {key_id} was deleted again, and the old key "
        f"{plan.old_key.access_key_id} and {plan.destination.describe()} are unchanged"
        f"{removed}{advice}"
    )


def retire_old_key(
    signer: IamService, plan: RotationPlan, reporter: Reporter
) -> PartialFailure | None:
    """Deactivate, delete or keep the old key; return the failure instead of raising it."""
    key_id = plan.old_key.access_key_id
    user_name = plan.subject.user_name
    try:
        if plan.retire == "deactivate":
            signer.set_status(user_name, key_id, "Inactive")
        elif plan.retire == "delete":
            _delete_if_present(signer, user_name, key_id)
    except KeyrotError as error:
        return PartialFailure(
            f"the new key is saved and works, but retiring the old key {key_id} failed: "
            f"{error.message}",
            details=[
                f"old key: {key_id}, still active",
                f"to finish: {plan.finish_command()}, or run {plan.rerun_command}, which finds "
                f"the journal {journal.journal_path(plan.scope)} and finishes it",
            ],
        )

    reporter.note(f"{RETIRE_RESULTS[plan.retire]} the old key {key_id}")
    return None


def _delete_if_present(signer: IamService, user_name: str | None, key_id: str) -> None:
    try:
        signer.delete_key(user_name, key_id)
    except NotFoundError:
        # An earlier, interrupted run already deleted it.
        return
