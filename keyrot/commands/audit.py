"""`keyrot audit`: every user's access keys in one or more accounts, checked against a policy."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from keyrot.commands.common import CommonOptions, common_options, days_type
from keyrot.commands.fleet_options import (
    OLDER_THAN_HELP,
    UNUSED_FOR_HELP,
    AccountOptions,
    account_options,
)

if TYPE_CHECKING:
    from keyrot.fleet.audit import FleetAudit

KEY_ID_SCOPES = ("breaking", "all", "none")


@click.command()
@click.option("--older-than", type=days_type(), default=90, show_default=True,
              metavar="DAYS", help=f"Policy limit on age: flag Active {OLDER_THAN_HELP}.")
@click.option("--unused-for", type=days_type(), default=30, show_default=True,
              metavar="DAYS", help=f"Policy limit on idle time: flag Active {UNUSED_FOR_HELP}.")
@click.option("--key-ids", "key_id_scope", type=click.Choice(KEY_ID_SCOPES), default="breaking",
              show_default=True,
              help="Whose access key IDs to look up with ListAccessKeys (the credential report "
              "has none): users with a key that breaks the policy, every user, or nobody.")
@click.option("--only-breaking", is_flag=True,
              help="List only Active keys that break the policy (the summary still counts all).")
@account_options
@common_options
def audit(
    options: CommonOptions,
    accounts: AccountOptions,
    older_than: int,
    unused_for: int,
    key_id_scope: str,
    only_breaking: bool,
) -> None:
    """Check every user's access keys against a policy: no Active key older than --older-than
    days, none unused for --unused-for days.

    Users and keys come from the IAM credential report, a few requests whatever the number of
    users; IAM may take a while to generate it, and reuses one for up to four hours. Only
    Active keys can break the policy. Exits 0 when the audit ran, whatever it found.

    \b
    Examples:
      keyrot audit
      keyrot audit --older-than 90 --unused-for 30 --output json > audit.json
      keyrot audit --accounts 111111111111,222222222222 --role-name KeyAuditor
    """
    from datetime import UTC, datetime

    from keyrot.fleet.audit import AuditRequest, FleetAudit, audit_account
    from keyrot.fleet.policy import KeyPolicy
    from keyrot.fleet.progress import progress_for

    request = AuditRequest(
        policy=KeyPolicy(older_than, unused_for),
        now=datetime.now(UTC),
        key_ids=key_id_scope,  # type: ignore[arg-type]
        workers=accounts.concurrency,
        report_timeout=accounts.report_timeout,
    )
    service = options.connect()

    with progress_for(quiet=options.quiet, color=options.color) as progress:
        runs = accounts.run(
            service, "keyrot-audit",
            lambda account, assumed: audit_account(assumed, account, request, progress),
        )
    result = FleetAudit(request, [run.value for run in runs.results], runs.failures)
    _show(options, result, only_breaking=only_breaking, show_account=bool(accounts.account_ids))
    _warn_of_stale_reports(options, result)
    _raise_for_failed_accounts(result)


def _show(options: CommonOptions, result: FleetAudit, *, only_breaking: bool,
          show_account: bool) -> None:
    from keyrot.fleet import counted
    from keyrot.fleet.audit import BREAKS_POLICY
    from keyrot.fleet.render import audit_row, audit_table, summary_tables

    output = options.writer()
    keys = [key for key in result.keys if not only_breaking or key.state == BREAKS_POLICY]
    summary = result.summary()

    if options.output == "json":
        document = result.to_json()
        document["AccessKeys"] = [key.to_json() for key in keys]
        output.json_document(document)
    elif options.output == "text":
        output.text_lines([audit_row(key) for key in keys])
    else:
        title = (f"Access keys (an Active key {result.request.policy.describe()} breaks the "
                 "policy)")
        output.table(audit_table(title, keys, show_account=show_account))
        for table in summary_tables(summary):
            output.table(table)

    breaking = summary.by_state[BREAKS_POLICY]
    verb = "breaks" if breaking == 1 else "break"
    output.note(f"{breaking} of {counted(summary.keys, 'access key')} {verb} the policy "
                f"({result.request.policy.describe()})")


def _warn_of_stale_reports(options: CommonOptions, result: FleetAudit) -> None:
    from keyrot.fleet import counted
    from keyrot.models import iso_utc

    output = options.writer()
    for account in result.stale_reports():
        assert account.report_generated is not None
        hours = int((result.request.now - account.report_generated).total_seconds() // 3600)
        output.warn(
            f"the credential report of account {account.account} was generated at "
            f"{iso_utc(account.report_generated)} ({counted(hours, 'hour')} ago), so key "
            "statuses and last use may lag behind IAM"
        )


def _raise_for_failed_accounts(result: FleetAudit) -> None:
    from keyrot.errors import KeyrotError
    from keyrot.fleet import counted

    if not result.failures:
        return
    total = len(result.failures) + len(result.accounts)
    verb = "was" if len(result.failures) == 1 else "were"
    error = KeyrotError(
        f"{len(result.failures)} of {counted(total, 'account')} {verb} not audited",
        details=[f"account {failure.account_id}: {failure.message}"
                 for failure in result.failures],
    )
    error.exit_code = result.failures[0].exit_code
    raise error
