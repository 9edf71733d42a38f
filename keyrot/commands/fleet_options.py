"""Options shared by the fleet commands (audit, and deactivate or delete with --all-users), and
the bulk run behind `--all-users`.

This module imports only click at load time, so commands that use its decorators stay fast to
load for `--help` and completion.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from keyrot.commands.common import CommonOptions, days_type, seconds_type

if TYPE_CHECKING:
    from keyrot.errors import KeyrotError
    from keyrot.fleet.accounts import AccountRuns
    from keyrot.fleet.bulk import AccountPlan, BulkAction, BulkRequest, BulkRun
    from keyrot.fleet.progress import ProgressReporter
    from keyrot.iam import IamService
    from keyrot.render import Output

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

DEFAULT_CONCURRENCY = 8
DEFAULT_REPORT_TIMEOUT = 300.0
OLDER_THAN_HELP = (
    "keys at least DAYS full days old (DAYS x 24 hours or more since CreateDate: 90 counts a "
    "key created exactly 90 days ago, not one a second younger)"
)
UNUSED_FOR_HELP = (
    "keys with DAYS full days or more since their last use, or since CreateDate when never used"
)
# A user name (ASCII letters, digits and +=,.@_-) with the shell wildcards *, ?, [SET] and [!SET].
NAME_CHARACTER = r"[A-Za-z0-9+=,.@_-]"
EXCLUDE_PATTERN = re.compile(rf"(?:{NAME_CHARACTER}|\*|\?|\[!?{NAME_CHARACTER}+\])+")
EXCLUDE_PATTERN_RULE = (
    "a name or shell pattern uses ASCII letters, digits and +=,.@_- plus the wildcards * (any "
    "characters), ? (one character), [SET] and [!SET] (one character in, or not in, SET, such "
    "as [1-3])"
)


@dataclass(frozen=True)
class AccountOptions:
    """The accounts a fleet command runs in: the caller's, or each listed one through a role."""

    account_ids: tuple[str, ...]
    role_name: str | None
    concurrency: int
    report_timeout: float

    def run(
        self, service: IamService, session_name: str, work: Callable[[str, IamService], T]
    ) -> AccountRuns[T]:
        from keyrot.fleet.accounts import run_here, run_in_accounts

        if not self.account_ids:
            return run_here(service, work)
        assert self.role_name is not None
        return run_in_accounts(service, self.account_ids, self.role_name, session_name, work)


@dataclass(frozen=True)
class BulkOptions:
    """The --all-users selection given to deactivate or delete."""

    older_than: int | None
    unused_for: int | None
    excluded_users: tuple[str, ...]
    accounts: AccountOptions


def account_options(command: F) -> F:
    """Add --accounts, --accounts-file, --role-name, --concurrency and --report-timeout, passed
    to the command as `accounts`."""

    @click.option("--accounts", "accounts_text", metavar="ID[,ID...]",
                  help="Run in these AWS accounts (12-digit IDs, comma-separated) by assuming "
                  "--role-name in each; results gain an Account field.")
    @click.option("--accounts-file", type=click.Path(dir_okay=False, path_type=Path),
                  metavar="FILE",
                  help="Read account IDs from FILE: separated by commas, spaces or new lines, "
                  "with # starting a comment.")
    @click.option("--role-name", metavar="NAME",
                  help="IAM role to assume in each account (arn:PARTITION:iam::ID:role/NAME, "
                  "partition of the caller).")
    @click.option("--concurrency", type=click.IntRange(1, 10), default=DEFAULT_CONCURRENCY,
                  show_default=True, metavar="N", help="IAM requests in flight at once per "
                  "account.")
    @click.option("--report-timeout", type=seconds_type(minimum=1), default=DEFAULT_REPORT_TIMEOUT,
                  show_default=True, metavar="SECONDS",
                  help="Seconds to wait for IAM to generate the credential report.")
    @functools.wraps(command)
    def wrapper(
        *args: Any,
        accounts_text: str | None,
        accounts_file: Path | None,
        role_name: str | None,
        concurrency: int,
        report_timeout: float,
        **kwargs: Any,
    ) -> Any:
        accounts = _account_options(accounts_text, accounts_file, role_name, concurrency,
                                    report_timeout)
        return command(*args, accounts=accounts, **kwargs)

    return cast(F, wrapper)


def bulk_options(command: F) -> F:
    """Add --all-users and its selectors, passed to the command as `bulk` (None without
    --all-users)."""

    @click.option("--all-users", is_flag=True,
                  help="Act on every user's keys that match --older-than or --unused-for; "
                  "shows the plan and asks first (or needs --yes without a terminal).")
    @click.option("--older-than", type=days_type(), metavar="DAYS",
                  help=f"With --all-users, select {OLDER_THAN_HELP}.")
    @click.option("--unused-for", type=days_type(), metavar="DAYS",
                  help=f"With --all-users, select {UNUSED_FOR_HELP}.")
    @click.option("--exclude-user", "excluded_users", multiple=True, metavar="PATTERN",
                  help="With --all-users, leave the keys of users that match PATTERN alone: a "
                  "user name or a shell pattern with *, ?, [SET] or [!SET], such as 'svc-*'. "
                  "Names match ignoring case, as IAM treats names that differ only in case as "
                  "the same user. A pattern that matches no user stops the run before any "
                  "change. Repeat for more users.")
    @account_options
    @functools.wraps(command)
    def wrapper(
        *args: Any,
        all_users: bool,
        older_than: int | None,
        unused_for: int | None,
        excluded_users: tuple[str, ...],
        accounts: AccountOptions,
        **kwargs: Any,
    ) -> Any:
        bulk = _bulk_options(all_users, older_than, unused_for, excluded_users, accounts)
        return command(*args, bulk=bulk, **kwargs)

    return cast(F, wrapper)


def run_bulk(
    options: CommonOptions,
    action: BulkAction,
    bulk: BulkOptions,
    *,
    user_name: str | None,
    key_ids: tuple[str, ...],
    force: bool,
) -> None:
    """Run `ACTION --all-users`: plan, show, confirm, act, report; raise for any failure."""
    from keyrot.fleet.bulk import BulkRun, unmatched_exclusions
    from keyrot.fleet.progress import progress_for

    _check_bulk_usage(action, user_name, key_ids, force)
    service = _bulk_service(options)
    signing_key_id = service.signing_credentials().access_key_id
    request = _bulk_request(options, action, bulk, include_active=force)
    output = options.writer()

    with progress_for(quiet=options.quiet, color=options.color) as progress:
        plan = _plan(service, bulk, request, signing_key_id, progress)
    selected = [key for result in plan.results for key in result.value.keys]
    unmatched = unmatched_exclusions([result.value for result in plan.results], request)
    run = BulkRun(request, options.dry_run, selected, plan.failures, unmatched)
    if unmatched:
        _show_refused_plan(output, options, run, show_account=bool(bulk.accounts.account_ids))
        raise _unmatched_refusal(run)
    _show_plan(output, options, run, show_account=bool(bulk.accounts.account_ids))

    if run.with_result("planned") and not options.dry_run:
        _confirm(options, run)
        with progress_for(quiet=options.quiet, color=options.color) as progress:
            from keyrot.fleet.bulk import execute

            keys = execute([result.value for result in plan.results], request, progress)
        run = BulkRun(request, False, keys, plan.failures)

    _show_outcome(output, options, run, show_account=bool(bulk.accounts.account_ids))
    _raise_for_failures(run)


def _plan(service: IamService, bulk: BulkOptions, request: BulkRequest, signing_key_id: str,
          progress: ProgressReporter) -> AccountRuns[AccountPlan]:
    from keyrot.fleet.bulk import plan_account

    return bulk.accounts.run(
        service,
        f"keyrot-{request.action}",
        lambda account, assumed: plan_account(assumed, account, request, signing_key_id,
                                              progress),
    )


def _bulk_service(options: CommonOptions) -> IamService:
    from dataclasses import replace

    # Adaptive mode adds client-side rate limiting to the retries, which suits many requests
    # in parallel; a retry mode the user configured still wins.
    return options.connect(replace(options.connection(), default_retry_mode="adaptive"))


def _bulk_request(options: CommonOptions, action: BulkAction, bulk: BulkOptions, *,
                  include_active: bool) -> BulkRequest:
    from datetime import UTC, datetime

    from keyrot.fleet.bulk import BulkRequest
    from keyrot.fleet.policy import KeyPolicy

    return BulkRequest(
        action=action,
        policy=KeyPolicy(bulk.older_than, bulk.unused_for),
        excluded_users=bulk.excluded_users,
        include_active=include_active,
        now=datetime.now(UTC),
        workers=bulk.accounts.concurrency,
        report_timeout=bulk.accounts.report_timeout,
    )


def _show_plan(output: Output, options: CommonOptions, run: BulkRun, *, show_account: bool
               ) -> None:
    from keyrot.fleet.render import bulk_table

    # The plan is shown before a prompt or for a dry run; with --yes the result table follows.
    asks = not options.assume_yes and bool(run.with_result("planned"))
    if options.output != "table" or not run.keys or not (run.dry_run or asks):
        return
    title = f"Plan: {run.request.action} keys {run.request.policy.describe()}"
    if run.dry_run:
        title += " (dry run)"
    output.table(bulk_table(title, run.keys, show_account=show_account))


def _show_refused_plan(output: Output, options: CommonOptions, run: BulkRun, *,
                       show_account: bool) -> None:
    """Show the plan of a run refused for an exclusion that matches no user, then the errors."""
    from keyrot.fleet.render import bulk_row, bulk_table

    if options.output == "json":
        output.json_document(run.to_json())
    elif options.output == "text":
        output.text_lines([bulk_row(key) for key in run.keys])
    elif run.keys:
        title = f"Plan: {run.request.action} keys {run.request.policy.describe()} (refused)"
        output.table(bulk_table(title, run.keys, show_account=show_account))


def _unmatched_refusal(run: BulkRun) -> KeyrotError:
    from keyrot.errors import InvalidInputError

    patterns = run.unmatched_exclusions
    one = len(patterns) == 1
    named = ", ".join(f"--exclude-user {pattern}" for pattern in patterns)
    return InvalidInputError(
        f"{named} matched no user in any account, so {'it' if one else 'they'} would protect "
        f"no key; nothing was "
        f"{run.request.action}d. Fix the {'pattern' if one else 'patterns'} (names match "
        f"ignoring case) or drop {'it' if one else 'them'}",
        details=[f"no user matched: {pattern}" for pattern in patterns],
    )


def _confirm(options: CommonOptions, run: BulkRun) -> None:
    from keyrot.errors import SafetyRefusal
    from keyrot.fleet import counted

    count = len(run.with_result("planned"))
    accounts = len({key.account for key in run.keys})
    scope = f"{counted(count, 'access key')} in {counted(accounts, 'account')}"
    if options.assume_yes:
        return
    confirm = options.confirmer()
    if confirm is None:
        raise SafetyRefusal(
            f"confirmation needed to {run.request.action} {scope}, and there is no terminal to "
            "ask on; nothing was changed. Pass --yes to go ahead, or --dry-run to only show "
            "the plan"
        )
    if not confirm(f"{run.request.action.capitalize()} {scope}?"):
        # The actions are deactivate and delete, so adding "d" gives the past tense.
        raise SafetyRefusal(f"declined at the prompt, so no key was {run.request.action}d")


def _show_outcome(output: Output, options: CommonOptions, run: BulkRun, *, show_account: bool
                  ) -> None:
    from keyrot.fleet.render import bulk_row, bulk_table

    if options.output == "json":
        output.json_document(run.to_json())
    elif options.output == "text":
        output.text_lines([bulk_row(key) for key in run.keys])
    elif not run.dry_run and (options.assume_yes or run.with_result("done")
                              or run.with_result("failed")):
        output.table(bulk_table(f"Result: {run.request.action}", run.keys,
                                show_account=show_account))

    counts = ", ".join(f"{name} {count}" for name, count in run.counts().items())
    output.note(f"{run.request.action} --all-users: {counts or 'no access key matched'}")


def _raise_for_failures(run: BulkRun) -> None:
    from keyrot.errors import KeyrotError, PartialFailure
    from keyrot.fleet import counted

    failed = run.with_result("failed")
    if not failed and not run.failures:
        return

    details = [f"failed: {key.label}: {key.detail}" for key in failed]
    details += [f"skipped account {failure.account_id}: {failure.message}"
                for failure in run.failures]
    summary = (f"{run.request.action} --all-users finished with "
               f"{counted(len(failed), 'failed key')} and "
               f"{counted(len(run.failures), 'skipped account')}; run it again to retry them")
    if run.with_result("done"):
        raise PartialFailure(summary, details=details)

    error = KeyrotError(summary, details=details)
    error.exit_code = failed[0].exit_code if failed else run.failures[0].exit_code
    raise error


def _check_bulk_usage(action: str, user_name: str | None, key_ids: tuple[str, ...],
                      force: bool) -> None:
    if key_ids or user_name is not None:
        raise click.UsageError(
            "--all-users selects keys by policy and cannot be combined with --user or access "
            f"key IDs; run `keyrot {action} --user NAME KEY_ID` for named keys"
        )
    if force and action == "deactivate":
        raise click.UsageError(
            "--force does not apply to deactivate --all-users: a bulk run never deactivates "
            "the key that signs its requests"
        )


def _bulk_options(all_users: bool, older_than: int | None, unused_for: int | None,
                  excluded_users: tuple[str, ...], accounts: AccountOptions) -> BulkOptions | None:
    selectors_given = older_than is not None or unused_for is not None or excluded_users
    if not all_users:
        if selectors_given or accounts.account_ids:
            raise click.UsageError(
                "--older-than, --unused-for, --exclude-user and --accounts need --all-users"
            )
        return None
    if older_than is None and unused_for is None:
        raise click.UsageError("--all-users needs --older-than DAYS, --unused-for DAYS, or both")
    for pattern in excluded_users:
        _check_exclusion(pattern)
    return BulkOptions(older_than, unused_for, excluded_users, accounts)


def _check_exclusion(pattern: str) -> None:
    if not EXCLUDE_PATTERN.fullmatch(pattern):
        raise click.BadParameter(f"invalid pattern {pattern!r}: {EXCLUDE_PATTERN_RULE}",
                                 param_hint="--exclude-user")


def _account_options(accounts_text: str | None, accounts_file: Path | None,
                     role_name: str | None, concurrency: int, report_timeout: float
                     ) -> AccountOptions:
    if accounts_text is None and accounts_file is None and role_name is None:
        # The common single-account run skips the module below, which loads boto3.
        return AccountOptions((), None, concurrency, report_timeout)

    from keyrot.fleet.accounts import check_role_name, parse_account_ids, read_accounts_file

    account_ids: tuple[str, ...] = ()
    if accounts_text is not None:
        account_ids += parse_account_ids(accounts_text, "--accounts")
    if accounts_file is not None:
        account_ids += read_accounts_file(accounts_file)
    if account_ids and role_name is None:
        raise click.UsageError("--accounts and --accounts-file need --role-name NAME")
    if role_name is not None and not account_ids:
        raise click.UsageError("--role-name needs --accounts or --accounts-file")
    if role_name is not None:
        check_role_name(role_name)
    return AccountOptions(tuple(dict.fromkeys(account_ids)), role_name, concurrency,
                          report_timeout)
