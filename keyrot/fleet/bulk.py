"""Enforcing a key policy on every user of an account: plan, then act concurrently.

Planning reads the credential report, then lists the current keys (with their IDs) of the users
the report shows with a key that matches the policy, so the plan uses each key's current
status. When a key matches only because it looks unused, its last use is read again with
GetAccessKeyLastUsed, because the report can be hours old and a key used since then must stay.
The key that signs the requests, root keys and excluded users are reported as skipped.
Exclusions match user names ignoring case, as IAM does when it keeps user names unique.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from keyrot.errors import EXIT_INTERRUPTED, KeyrotError, NotFoundError
from keyrot.fleet import counted, key_fields
from keyrot.fleet.accounts import AccountFailure
from keyrot.fleet.policy import UNUSED_FOR, KeyPolicy, full_days
from keyrot.fleet.progress import ProgressReporter
from keyrot.fleet.report import ReportUser, fetch_report, merge_listed_keys
from keyrot.iam import IamService
from keyrot.models import AccessKey, LastUse, iso_utc

BulkAction = Literal["deactivate", "delete"]
PAST_TENSE: dict[str, str] = {"deactivate": "deactivated", "delete": "deleted"}
PARTICIPLE: dict[str, str] = {"deactivate": "deactivating", "delete": "deleting"}

PLANNED = "planned"
DONE = "done"
UNCHANGED = "unchanged"
SKIPPED = "skipped"
FAILED = "failed"
RESULTS = (DONE, UNCHANGED, SKIPPED, FAILED)


@dataclass(frozen=True)
class BulkRequest:
    action: BulkAction
    policy: KeyPolicy
    excluded_users: tuple[str, ...]
    # For delete: also delete Active keys (--force). Deactivate always acts on Active keys.
    include_active: bool
    now: datetime
    workers: int
    report_timeout: float


@dataclass(frozen=True)
class BulkKey:
    """A key the policy selected, and what the run did or will do with it."""

    account: str
    user_name: str
    access_key_id: str | None
    status: str
    create_date: datetime
    last_use: LastUse | None
    age_days: int
    breaches: tuple[str, ...]
    result: str
    detail: str
    exit_code: int = 0

    def with_result(self, result: str, detail: str, exit_code: int = 0) -> BulkKey:
        return replace(self, result=result, detail=detail, exit_code=exit_code)

    @property
    def label(self) -> str:
        return f"{self.access_key_id or 'a key'} of {self.user_name} in account {self.account}"

    def to_json(self) -> dict[str, Any]:
        return {
            **key_fields(self),
            "Breaches": list(self.breaches),
            "Result": self.result,
            "Detail": self.detail,
        }


@dataclass(frozen=True)
class AccountPlan:
    account: str
    service: IamService
    keys: list[BulkKey]
    # The --exclude-user patterns that match at least one user of the account.
    matched_exclusions: frozenset[str] = frozenset()


@dataclass(frozen=True)
class BulkRun:
    """The plan or outcome of a bulk run over one or more accounts."""

    request: BulkRequest
    dry_run: bool
    keys: list[BulkKey]
    failures: list[AccountFailure]
    # --exclude-user patterns that matched no user in any account read; such a run is refused.
    unmatched_exclusions: tuple[str, ...] = ()

    def with_result(self, result: str) -> list[BulkKey]:
        return [key for key in self.keys if key.result == result]

    def counts(self) -> dict[str, int]:
        counted = Counter(key.result for key in self.keys)
        return {result: counted[result] for result in (PLANNED, *RESULTS) if counted[result]}

    def to_json(self) -> dict[str, Any]:
        return {
            "Action": self.request.action,
            "DryRun": self.dry_run,
            "Policy": self.request.policy.to_json(),
            "ExcludedUsers": list(self.request.excluded_users),
            "Now": iso_utc(self.request.now),
            "Summary": self.counts(),
            "AccessKeys": [key.to_json() for key in self.keys],
            "FailedAccounts": [failure.to_json() for failure in self.failures],
            "UnmatchedExclusions": list(self.unmatched_exclusions),
        }


def plan_account(
    service: IamService,
    account: str,
    request: BulkRequest,
    signing_key_id: str | None,
    progress: ProgressReporter,
) -> AccountPlan:
    """Select the account's keys that match the policy and decide what to do with each."""
    report = fetch_report(
        service.iam_client,
        timeout=request.report_timeout,
        on_wait=lambda state: progress.waiting(
            f"waiting for the IAM credential report of account {account} ({state.lower()})"
        ),
    )
    planner = _Planner(service, account, request, signing_key_id)
    keys: list[BulkKey] = []
    to_list: list[ReportUser] = []
    for user in report.users:
        held_back = planner.held_back_from_report(user)
        if held_back is None:
            to_list.append(user)
        else:
            keys.extend(held_back)

    with progress.task(f"reading keys in account {account}", total=len(to_list)) as task:

        def read_user(user: ReportUser) -> list[BulkKey]:
            selected = planner.select_current_keys(user)
            task.advance()
            return selected

        with ThreadPoolExecutor(max_workers=request.workers) as pool:
            for selected in pool.map(read_user, to_list):
                keys.extend(selected)
    return AccountPlan(account=account, service=service, keys=keys,
                       matched_exclusions=matched_exclusions(report.users, request))


def exclusion_matches(pattern: str, user_name: str) -> bool:
    """Tell whether user_name matches an --exclude-user pattern, ignoring case."""
    return fnmatch.fnmatchcase(user_name.lower(), pattern.lower())


def matched_exclusions(users: tuple[ReportUser, ...], request: BulkRequest) -> frozenset[str]:
    return frozenset(
        pattern for pattern in request.excluded_users
        if any(exclusion_matches(pattern, user.user_name) for user in users)
    )


def unmatched_exclusions(plans: list[AccountPlan], request: BulkRequest) -> tuple[str, ...]:
    """Return the --exclude-user patterns that match no user in any of the planned accounts
    (none when no account was planned, as nothing changes then)."""
    if not plans:
        return ()
    matched = frozenset().union(*(plan.matched_exclusions for plan in plans))
    return tuple(pattern for pattern in request.excluded_users if pattern not in matched)


class _Planner:
    def __init__(self, service: IamService, account: str, request: BulkRequest,
                 signing_key_id: str | None) -> None:
        self.service = service
        self.account = account
        self.request = request
        self.signing_key_id = signing_key_id

    def held_back_from_report(self, user: ReportUser) -> list[BulkKey] | None:
        """Return the user's matching keys as skipped (root, excluded), or None to list them."""
        matching = [
            key for key in user.keys
            if self.breaches(key.create_date, key.last_use)
        ]
        if not matching:
            return []
        if user.is_root:
            reason = ("root access keys are managed only by signing in as root; "
                      "a bulk run does not change them")
        elif (pattern := self.exclusion(user.user_name)) is not None:
            reason = f"excluded by --exclude-user {pattern}"
        else:
            return None
        return [
            self.key(user.user_name, None, key.status, key.create_date, key.last_use,
                     SKIPPED, reason)
            for key in matching
        ]

    def select_current_keys(self, user: ReportUser) -> list[BulkKey]:
        try:
            listed = merge_listed_keys(self.service.list_keys(user.user_name), user.keys)
        except NotFoundError:
            # The user was deleted after the report was generated, and with it its keys.
            return []
        except KeyrotError as error:
            return [self.failed_user(user, error)]

        selected = []
        for key in listed:
            try:
                checked = self.recheck_last_use(key)
            except KeyrotError as error:
                selected.append(self.from_access_key(key, FAILED, error.message, error.exit_code))
                continue
            if checked is not None:
                selected.append(self.decide(checked))
        return selected

    def recheck_last_use(self, key: AccessKey) -> AccessKey | None:
        """Return the key if it matches the policy with its current last use, else None."""
        breaches = self.breaches(key.create_date, key.last_use)
        if breaches == (UNUSED_FOR,):
            key = key.with_last_use(self.service.last_use(key.access_key_id))
            breaches = self.breaches(key.create_date, key.last_use)
        return key if breaches else None

    def decide(self, key: AccessKey) -> BulkKey:
        if key.access_key_id == self.signing_key_id:
            return self.from_access_key(
                key, SKIPPED, "signs these requests; a bulk run never changes the key it runs on"
            )
        if self.request.action == "deactivate" and key.status != "Active":
            return self.from_access_key(key, UNCHANGED, f"already {key.status}")
        active_kept = not self.request.include_active and key.status == "Active"
        if self.request.action == "delete" and active_kept:
            return self.from_access_key(
                key, SKIPPED, "Active; deactivate it first, or pass --force to delete it"
            )
        return self.from_access_key(key, PLANNED, self.request.action)

    def failed_user(self, user: ReportUser, error: KeyrotError) -> BulkKey:
        first = user.keys[0]
        return self.key(user.user_name, None, first.status, first.create_date, first.last_use,
                        FAILED, error.message, error.exit_code)

    def breaches(self, create_date: datetime, last_use: LastUse | None) -> tuple[str, ...]:
        last_used = last_use.date if last_use else None
        return self.request.policy.breaches(create_date, last_used, self.request.now)

    def exclusion(self, user_name: str) -> str | None:
        # IAM user names cannot contain *, ? or [, so a pattern never mistakes a literal name.
        for pattern in self.request.excluded_users:
            if exclusion_matches(pattern, user_name):
                return pattern
        return None

    def from_access_key(self, key: AccessKey, result: str, detail: str,
                        exit_code: int = 0) -> BulkKey:
        return self.key(key.user_name, key.access_key_id, key.status, key.create_date,
                        key.last_use, result, detail, exit_code)

    def key(self, user_name: str, access_key_id: str | None, status: str, create_date: datetime,
            last_use: LastUse | None, result: str, detail: str, exit_code: int = 0) -> BulkKey:
        return BulkKey(
            account=self.account,
            user_name=user_name,
            access_key_id=access_key_id,
            status=status,
            create_date=create_date,
            last_use=last_use,
            age_days=full_days(create_date, self.request.now),
            breaches=self.breaches(create_date, last_use),
            result=result,
            detail=detail,
            exit_code=exit_code,
        )


def execute(
    plans: list[AccountPlan], request: BulkRequest, progress: ProgressReporter
) -> list[BulkKey]:
    """Act on every planned key concurrently and return all keys with their results.

    On Ctrl-C, keys not yet started are left alone, the requests in flight finish, and an
    Interrupted error (exit status 130) names the keys already changed.
    """
    services = {plan.account: plan.service for plan in plans}
    keys = [key for plan in plans for key in plan.keys]
    planned = [index for index, key in enumerate(keys) if key.result == PLANNED]
    act = _action(request.action)

    description = f"{PARTICIPLE[request.action]} access keys"
    pool = ThreadPoolExecutor(max_workers=request.workers)
    with progress.task(description, total=len(planned)) as task:
        futures = {
            pool.submit(_act_on_key, act, services[keys[index].account], keys[index]): index
            for index in planned
        }
        try:
            for future in as_completed(futures):
                keys[futures[future]] = future.result()
                task.advance()
        except KeyboardInterrupt:
            pool.shutdown(wait=True, cancel_futures=True)
            raise _interrupted(request, keys, futures) from None
    pool.shutdown()
    return keys


def _interrupted(
    request: BulkRequest, keys: list[BulkKey], futures: dict[Future[BulkKey], int]
) -> Interrupted:
    for future, index in futures.items():
        if future.done() and not future.cancelled():
            keys[index] = future.result()
    done = [key for key in keys if key.result == DONE]
    return Interrupted(
        f"interrupted: {request.action} --all-users stopped after {len(done)} of "
        f"{counted(len(futures), 'key')}; keys not listed below were not changed",
        details=[f"{PAST_TENSE[request.action]}: {key.label}" for key in done],
    )


class Interrupted(KeyrotError):
    exit_code = EXIT_INTERRUPTED


def _action(action: BulkAction) -> Callable[[IamService, str, str], None]:
    if action == "deactivate":
        return lambda service, user, key_id: service.set_status(user, key_id, "Inactive")
    return lambda service, user, key_id: service.delete_key(user, key_id)


def _act_on_key(
    act: Callable[[IamService, str, str], None], service: IamService, key: BulkKey
) -> BulkKey:
    assert key.access_key_id is not None
    try:
        act(service, key.user_name, key.access_key_id)
    except KeyrotError as error:
        return key.with_result(FAILED, error.message, error.exit_code)
    done = key.with_result(DONE, PAST_TENSE[key.detail])
    return replace(done, status="Inactive") if key.detail == "deactivate" else done
