"""`keyrot delete`: delete named keys of one user, or every user's keys that match a policy."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from keyrot.commands.common import CommonOptions, common_options, key_ids_argument, user_option
from keyrot.commands.fleet_options import BulkOptions, bulk_options, run_bulk

if TYPE_CHECKING:
    from keyrot.deletion import DeleteReport


@click.command()
@user_option
@key_ids_argument(required=False)
@click.option("--force", is_flag=True,
              help="Delete Active keys too (only Inactive ones are deleted otherwise). It also "
              "allows deleting the key that signs the request: without --force a terminal "
              "asks first, and without a terminal nothing is deleted.")
@bulk_options
@common_options
def delete(
    options: CommonOptions,
    user_name: str | None,
    key_ids: tuple[str, ...],
    force: bool,
    bulk: BulkOptions | None,
) -> None:
    """Delete access keys for good and show the keys before and after.

    Only Inactive keys are deleted unless --force is given: deactivate a key first, wait until
    nothing breaks, then delete it. Deleting the key that signs the request locks its
    credentials out, so it asks on a terminal and needs --force without one. With --all-users,
    every user's keys that match --older-than or --unused-for are deleted (Inactive ones only,
    unless --force), never the key that signs the requests.

    \b
    Examples:
      keyrot delete --user Bob AKIAIOSFODNN7EXAMPLE
      keyrot delete --all-users --unused-for 60 --dry-run
      keyrot delete --all-users --older-than 120 --exclude-user 'break-glass-*' --yes
    """
    if bulk is not None:
        run_bulk(options, "delete", bulk, user_name=user_name, key_ids=key_ids, force=force)
        return
    if not key_ids:
        raise click.UsageError("missing ACCESS_KEY_ID: name the keys to delete, or use "
                               "--all-users with --older-than or --unused-for")

    from keyrot.deletion import DeleteRequest, delete_keys

    request = DeleteRequest(user_name=user_name, key_ids=key_ids, dry_run=options.dry_run,
                            force=force, profile=options.profile)
    report = delete_keys(options.connect(), request, options.confirmer())
    _show_report(options, report)


def _show_report(options: CommonOptions, report: DeleteReport) -> None:
    from keyrot.render import key_row, key_table

    output = options.writer()
    verb = "would delete" if report.dry_run else "deleted"
    deleted = frozenset(report.deleted)

    if report.signing_key_deleted is not None:
        output.warn(f"{report.signing_key_deleted} signs these requests; once it is deleted, "
                    "these credentials no longer work")
    if options.output == "json":
        output.json_document(report.to_json())
    elif options.output == "text":
        output.text_lines([[*key_row(key), "deleted" if key.access_key_id in deleted else "kept"]
                           for key in report.before])
    else:
        caption = f"* {verb}" + (" (dry run)" if report.dry_run else "")
        output.table(key_table(f"{report.subject.label}: before", report.before,
                               marked=deleted, mark_caption=caption))
        output.table(key_table(f"{report.subject.label}: after", report.after))

    for key_id in report.deleted:
        output.note(f"{verb} {key_id}")
