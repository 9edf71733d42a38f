"""`keyrot list`, `keyrot activate` and `keyrot deactivate`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from keyrot.commands.common import CommonOptions, common_options, key_ids_argument, user_option
from keyrot.commands.fleet_options import BulkOptions, bulk_options, run_bulk

if TYPE_CHECKING:
    from keyrot.keystatus import Status, StatusReport


@click.command("list")
@user_option
@common_options
def list_keys(options: CommonOptions, user_name: str | None) -> None:
    """Show a user's access keys: status, creation date and age, and last use.

    \b
    Examples:
      keyrot list --user Bob
      keyrot list --output text | cut -f2,3
    """
    from keyrot.keylist import list_user_keys
    from keyrot.render import key_row, key_table

    service = options.connect()
    listing = list_user_keys(service, user_name)
    output = options.writer()

    if options.output == "json":
        output.json_document(listing.to_json())
    elif options.output == "text":
        output.text_lines([key_row(key) for key in listing.keys])
    else:
        output.table(key_table(f"Access keys of {listing.subject.label}", listing.keys))


@click.command()
@user_option
@key_ids_argument(required=False)
@click.option("--force", is_flag=True,
              help="Deactivate even the key that signs this request, which locks it out.")
@bulk_options
@common_options
def deactivate(
    options: CommonOptions,
    user_name: str | None,
    key_ids: tuple[str, ...],
    force: bool,
    bulk: BulkOptions | None,
) -> None:
    """Set one or more access keys to Inactive and show the keys before and after.

    With --all-users, every user's Active keys that match --older-than or --unused-for are
    deactivated after the plan is shown and confirmed, never the key that signs the requests.

    \b
    Examples:
      keyrot deactivate --user Bob AKIAIOSFODNN7EXAMPLE
      keyrot deactivate --dry-run --user Bob AKIAIOSFODNN7EXAMPLE AKIAI44QH8DHBEXAMPLE
      keyrot deactivate --all-users --older-than 90 --unused-for 30 --yes
    """
    if bulk is not None:
        run_bulk(options, "deactivate", bulk, user_name=user_name, key_ids=key_ids, force=force)
        return
    if not key_ids:
        raise click.UsageError("missing ACCESS_KEY_ID: name the keys to deactivate, or use "
                               "--all-users with --older-than or --unused-for")
    _change_status(options, user_name, key_ids, "Inactive", force)


@click.command()
@user_option
@key_ids_argument(required=True)
@common_options
def activate(options: CommonOptions, user_name: str | None, key_ids: tuple[str, ...]) -> None:
    """Set one or more access keys to Active and show the keys before and after.

    \b
    Example:
      keyrot activate --user Bob AKIAIOSFODNN7EXAMPLE
    """
    _change_status(options, user_name, key_ids, "Active", force=False)


def _change_status(
    options: CommonOptions,
    user_name: str | None,
    key_ids: tuple[str, ...],
    status: Status,
    force: bool,
) -> None:
    from keyrot.keystatus import StatusChange, change_status

    request = StatusChange(
        user_name=user_name, key_ids=key_ids, status=status, dry_run=options.dry_run, force=force
    )
    service = options.connect()
    report = change_status(service, request, options.confirmer())
    _show_report(options, report)


def _show_report(options: CommonOptions, report: StatusReport) -> None:
    from keyrot.render import key_row, key_table

    output = options.writer()
    changed = frozenset(report.changed)
    verb = "would set" if report.dry_run else "set"
    unchanged = [key_id for key_id in report.requested if key_id not in changed]

    if report.dry_run and report.locks_out:
        output.warn(f"{report.locks_out} signs this request; deactivating it needs --force")
    if options.output == "json":
        output.json_document(report.to_json())
    elif options.output == "text":
        output.text_lines([[*key_row(key), _outcome(key.access_key_id, report)]
                           for key in report.after])
    else:
        caption = f"* {verb} to {report.status}" + (" (dry run)" if report.dry_run else "")
        output.table(key_table(f"{report.subject.label}: before", report.before))
        output.table(key_table(f"{report.subject.label}: after", report.after,
                               marked=changed, mark_caption=caption))

    for key_id in changed:
        output.note(f"{verb} {key_id} to {report.status}")
    for key_id in unchanged:
        output.note(f"{key_id} was already {report.status}; nothing sent")


def _outcome(key_id: str, report: StatusReport) -> str:
    """Return the text-output word for a key: changed, unchanged (named but already so) or -."""
    if key_id in report.changed:
        return "changed"
    return "unchanged" if key_id in report.requested else "-"
