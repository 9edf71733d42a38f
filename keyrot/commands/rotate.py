"""`keyrot rotate`: replace an access key with a new, verified one, without locking anyone out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import click

from keyrot.commands.common import CommonOptions, common_options, seconds_type, user_option
from keyrot.completion import complete_access_key_ids, complete_profiles
from keyrot.errors import InvalidInputError
from keyrot.validation import check_access_key_id

if TYPE_CHECKING:
    from keyrot.render import Output
    from keyrot.rotation_plan import RotationReport, RotationRequest
    from keyrot.secret_destinations import Destination

DEFAULT_VERIFY_TIMEOUT = 60.0


@click.command()
@user_option
@click.argument("key_id", metavar="[ACCESS_KEY_ID]", required=False,
                callback=lambda _context, _parameter, value: _checked_key_id(value),
                shell_complete=complete_access_key_ids)
@click.option("--delete", "delete_old", is_flag=True,
              help="Delete the old key once the new one works [default: deactivate it].")
@click.option("--keep-old", is_flag=True,
              help="Leave the old key active; retire it yourself later.")
@click.option("--delete-inactive-key", is_flag=True,
              help="If the user already has two keys and the other one is inactive, delete it "
              "to make room. An active other key is never touched.")
@click.option("--save-profile", metavar="NAME", shell_complete=complete_profiles,
              help="With --user: save the new key as this profile in the credentials file "
              "(created if missing).")
@click.option("--credentials-file", type=click.Path(dir_okay=False, path_type=Path),
              metavar="PATH",
              help="The credentials file for --save-profile [default: "
              "AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials].")
@click.option("--env-file", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
              help="Save the new key as AWS_ACCESS_KEY_ID=... and AWS_SECRET_ACCESS_KEY=... "
              "lines in this file (written atomically, mode 0600).")
@click.option("--show-secret", is_flag=True,
              help="Print the new secret access key on stdout.")
@click.option("--verify-timeout", type=seconds_type(minimum=0), default=DEFAULT_VERIFY_TIMEOUT,
              show_default=True, metavar="SECONDS",
              help="How long to keep trying the new key with STS before rolling back.")
@common_options
def rotate(
    options: CommonOptions,
    user_name: str | None,
    key_id: str | None,
    delete_old: bool,
    keep_old: bool,
    delete_inactive_key: bool,
    save_profile: str | None,
    credentials_file: Path | None,
    env_file: Path | None,
    show_secret: bool,
    verify_timeout: float,
) -> None:
    """Replace an access key with a new one, verified before the old one is retired.

    Without --user, rotates the key of the profile (--profile, AWS_PROFILE or default) and
    writes the new key into that profile. With --user, rotates another user's key and needs a
    destination for the new secret: --save-profile, --env-file, --output json or --show-secret.
    The old key is deactivated unless --delete or --keep-old is given. An interrupted rotation
    is finished or rolled back by the next run.

    \b
    Examples:
      keyrot rotate --profile work
      keyrot rotate --user Bob --save-profile bob --delete
      keyrot rotate --output json --yes > new-key.json
    """
    from keyrot.rotation import rotate as run_rotation
    from keyrot.rotation_plan import Interaction, check_local_state

    if delete_old and keep_old:
        raise click.UsageError("--delete and --keep-old cannot be used together; pick one")
    request = _request(options, user_name, key_id, delete_old, keep_old, delete_inactive_key,
                       _destination(save_profile, credentials_file, env_file), show_secret,
                       verify_timeout)
    local = check_local_state(request)

    # The rotation opens its own MFA session: it needs the long-term key as well.
    service = options.connect(with_mfa=False)
    output = options.writer()
    interaction = Interaction(reporter=output, confirm=_confirmer(options),
                              ask_mfa_code=options.code_prompter())
    report = run_rotation(service, request, local, interaction)

    _show(output, options, report, show_secret)
    if report.retire_error is not None:
        raise report.retire_error


def _request(
    options: CommonOptions,
    user_name: str | None,
    key_id: str | None,
    delete_old: bool,
    keep_old: bool,
    delete_inactive_key: bool,
    destination: Destination | None,
    show_secret: bool,
    verify_timeout: float,
) -> RotationRequest:
    from keyrot.rotation_plan import RotationRequest

    retire: Literal["deactivate", "delete", "keep"] = "deactivate"
    if delete_old:
        retire = "delete"
    elif keep_old:
        retire = "keep"
    return RotationRequest(
        user_name=user_name,
        key_id=key_id,
        profile_option=options.profile,
        destination=destination,
        secret_output=show_secret or options.output == "json",
        retire=retire,
        delete_inactive_key=delete_inactive_key,
        assume_yes=options.assume_yes,
        dry_run=options.dry_run,
        verify_timeout=verify_timeout,
        mfa_code=options.mfa_code,
        region_option=options.region,
        endpoint_url_option=options.endpoint_url,
    )


def _destination(
    save_profile: str | None, credentials_file: Path | None, env_file: Path | None
) -> Destination | None:
    from keyrot.credentials import credentials_file_path
    from keyrot.secret_destinations import EnvFileDestination, ProfileDestination

    if credentials_file is not None and save_profile is None:
        raise click.UsageError("--credentials-file needs --save-profile NAME")
    if save_profile is not None and env_file is not None:
        raise click.UsageError("--save-profile and --env-file cannot be used together; pick one")
    if save_profile is not None:
        path = credentials_file or credentials_file_path()
        return ProfileDestination(path.expanduser(), save_profile, create=True)
    if env_file is not None:
        return EnvFileDestination(env_file.expanduser())
    return None


def _checked_key_id(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return check_access_key_id(value)
    except InvalidInputError as error:
        raise click.BadParameter(error.message) from None


def _confirmer(options: CommonOptions) -> Callable[[str], bool] | None:
    if options.assume_yes:
        return lambda _question: True
    return options.confirmer()


def _show(
    output: Output, options: CommonOptions, report: RotationReport, show_secret: bool
) -> None:
    from keyrot.render import key_row, key_table

    plan = report.plan
    labels = _row_labels(report)
    new_key = report.new_key

    if report.dry_run and report.recovery is None:
        spare = plan.spare_key
        first = f"delete the inactive key {spare.access_key_id}, then " if spare else ""
        output.note(f"dry run: would {first}create a new key for {plan.subject.label}, save it "
                    f"to {plan.destination.describe()}, and the old key "
                    f"{plan.old_key.access_key_id} {report.old_key_result}; nothing was changed")
    if options.output == "json":
        output.json_document(report.to_json(include_secret=True))
    elif options.output == "text":
        rows = [[*key_row(key), labels.get(key.access_key_id, "unchanged")] for key in report.after]
        rows += [[*key_row(key), labels[key.access_key_id]] for key in plan.before
                 if labels.get(key.access_key_id) == "deleted"]
        if show_secret and new_key is not None:
            rows.append(["secret", new_key.key.access_key_id, new_key.secret_access_key])
        output.text_lines(rows)
    else:
        caption = "* " + ", ".join(f"{label} {key_id}" for key_id, label in labels.items())
        if report.dry_run:
            caption += " (dry run)"
        changed = frozenset(report.changed)
        output.table(key_table(f"{plan.subject.label}: before", plan.before))
        output.table(key_table(f"{plan.subject.label}: after", report.after, marked=changed,
                               mark_caption=caption))
        if show_secret and new_key is not None:
            output.stdout.print(f"{new_key.key.access_key_id} secret access key: "
                                f"{new_key.secret_access_key}", soft_wrap=True, markup=False)



def _row_labels(report: RotationReport) -> dict[str, str]:
    plan = report.plan
    labels: dict[str, str] = {}
    if plan.spare_key is not None:
        labels[plan.spare_key.access_key_id] = "deleted"
    if report.new_key is not None:
        labels[report.new_key.key.access_key_id] = "created"
    if plan.old_key.access_key_id in report.changed:
        labels[plan.old_key.access_key_id] = {
            "deactivate": "deactivated", "delete": "deleted", "keep": "kept"
        }[plan.retire]
    return labels
