"""Auditing every access key of an account against a key policy, from the credential report.

The report gives each key's status, creation time and last use for all users in a few calls.
Access key IDs are not in it, so ListAccessKeys is called only for the users whose IDs are
wanted: those with a key that breaks the policy by default, every user with keys on request.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from keyrot.errors import NotFoundError
from keyrot.fleet import key_fields
from keyrot.fleet.accounts import AccountFailure
from keyrot.fleet.policy import AGE_BANDS, OLDER_THAN, UNUSED_FOR, KeyPolicy, age_band, full_days
from keyrot.fleet.progress import ProgressReporter
from keyrot.fleet.report import CredentialReport, ReportUser, fetch_report, merge_listed_keys
from keyrot.iam import IamService
from keyrot.models import LastUse, iso_utc

KeyIdScope = Literal["breaking", "all", "none"]
KEY_ID_SCOPES: tuple[KeyIdScope, ...] = ("breaking", "all", "none")

COMPLIANT = "compliant"
BREAKS_POLICY = "breaks-policy"
INACTIVE = "inactive"
STATES = (COMPLIANT, BREAKS_POLICY, INACTIVE)
# A credential report older than this gets a warning: IAM reuses one for up to four hours.
REPORT_LAG_WARNING = timedelta(hours=1)


@dataclass(frozen=True)
class AuditRequest:
    policy: KeyPolicy
    now: datetime
    key_ids: KeyIdScope
    workers: int
    report_timeout: float


@dataclass(frozen=True)
class AuditedKey:
    """One access key with its age and the policy limits it breaks (Active keys only)."""

    account: str
    user_name: str
    access_key_id: str | None
    status: str
    create_date: datetime
    last_use: LastUse | None
    age_days: int
    breaches: tuple[str, ...]

    @property
    def state(self) -> str:
        if self.status != "Active":
            return INACTIVE
        return BREAKS_POLICY if self.breaches else COMPLIANT

    def to_json(self) -> dict[str, Any]:
        return {
            **key_fields(self),
            "State": self.state,
            "Breaches": list(self.breaches),
        }


@dataclass(frozen=True)
class AccountAudit:
    account: str
    report_generated: datetime | None
    user_count: int
    users_without_keys: int
    keys: list[AuditedKey]

    def to_json(self) -> dict[str, Any]:
        return {
            "Account": self.account,
            "ReportGeneratedTime": iso_utc(self.report_generated),
            "Users": self.user_count,
        }


@dataclass(frozen=True)
class AuditSummary:
    users: int
    users_without_keys: int
    keys: int
    by_state: dict[str, int]
    by_breach: dict[str, int]
    by_age_band: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "Users": self.users,
            "UsersWithoutKeys": self.users_without_keys,
            "AccessKeys": self.keys,
            "ByState": self.by_state,
            "ByBreach": self.by_breach,
            "ByAgeBand": self.by_age_band,
        }


@dataclass(frozen=True)
class FleetAudit:
    """The audit of one or more accounts, and the accounts that could not be audited."""

    request: AuditRequest
    accounts: list[AccountAudit]
    failures: list[AccountFailure]

    @property
    def keys(self) -> list[AuditedKey]:
        return [key for account in self.accounts for key in account.keys]

    def stale_reports(self) -> list[AccountAudit]:
        """Return the accounts whose credential report is more than REPORT_LAG_WARNING old."""
        return [
            account for account in self.accounts
            if account.report_generated is not None
            and self.request.now - account.report_generated > REPORT_LAG_WARNING
        ]

    def summary(self) -> AuditSummary:
        keys = self.keys
        breaking = [key for key in keys if key.state == BREAKS_POLICY]
        states = Counter(key.state for key in keys)
        bands = Counter(age_band(key.age_days) for key in keys)
        return AuditSummary(
            users=sum(account.user_count for account in self.accounts),
            users_without_keys=sum(account.users_without_keys for account in self.accounts),
            keys=len(keys),
            by_state={state: states[state] for state in STATES},
            by_breach={
                reason: sum(reason in key.breaches for key in breaking)
                for reason in (OLDER_THAN, UNUSED_FOR)
            },
            by_age_band={label: bands[label] for _, _, label in AGE_BANDS},
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "Policy": self.request.policy.to_json(),
            "Now": iso_utc(self.request.now),
            "Accounts": [account.to_json() for account in self.accounts],
            "FailedAccounts": [failure.to_json() for failure in self.failures],
            "Summary": self.summary().to_json(),
            "AccessKeys": [key.to_json() for key in self.keys],
        }


def audit_account(
    service: IamService, account: str, request: AuditRequest, progress: ProgressReporter
) -> AccountAudit:
    """Audit every user's keys in the account that service signs into."""
    report = fetch_report(
        service.iam_client,
        timeout=request.report_timeout,
        on_wait=lambda state: progress.waiting(
            f"waiting for the IAM credential report of account {account} ({state.lower()})"
        ),
    )
    keys_by_user = {
        user.user_name: _keys_from_report(account, user, request) for user in report.users
    }

    needing_ids = [user for user in report.users if _wants_key_ids(user, keys_by_user, request)]
    with progress.task(f"listing key IDs in account {account}", total=len(needing_ids)) as task:

        def list_user(user: ReportUser) -> tuple[str, list[AuditedKey] | None]:
            listed = _listed_keys(service, account, user, request)
            task.advance()
            return user.user_name, listed

        with ThreadPoolExecutor(max_workers=request.workers) as pool:
            for user_name, listed in pool.map(list_user, needing_ids):
                if listed is not None:
                    keys_by_user[user_name] = listed

    return _account_audit(account, report, keys_by_user)


def _account_audit(
    account: str, report: CredentialReport, keys_by_user: dict[str, list[AuditedKey]]
) -> AccountAudit:
    return AccountAudit(
        account=account,
        report_generated=report.generated,
        user_count=len(report.users),
        users_without_keys=sum(1 for user in report.users if not user.keys),
        keys=[key for user in report.users for key in keys_by_user[user.user_name]],
    )


def _wants_key_ids(
    user: ReportUser, keys_by_user: dict[str, list[AuditedKey]], request: AuditRequest
) -> bool:
    # Root keys are listed only with root credentials, never by user name.
    if user.is_root or not user.keys or request.key_ids == "none":
        return False
    if request.key_ids == "all":
        return True
    return any(key.state == BREAKS_POLICY for key in keys_by_user[user.user_name])


def _keys_from_report(account: str, user: ReportUser, request: AuditRequest) -> list[AuditedKey]:
    return [
        audited_key(account, user.user_name, None, key.status, key.create_date, key.last_use,
                    request)
        for key in user.keys
    ]


def _listed_keys(
    service: IamService, account: str, user: ReportUser, request: AuditRequest
) -> list[AuditedKey] | None:
    """Return the user's keys with IDs, or None when the user was deleted after the report."""
    try:
        listed = service.list_keys(user.user_name)
    except NotFoundError:
        return None
    return [
        audited_key(account, key.user_name, key.access_key_id, key.status, key.create_date,
                    key.last_use, request)
        for key in merge_listed_keys(listed, user.keys)
    ]


def audited_key(
    account: str,
    user_name: str,
    access_key_id: str | None,
    status: str,
    create_date: datetime,
    last_use: LastUse | None,
    request: AuditRequest,
) -> AuditedKey:
    breaches: tuple[str, ...] = ()
    if status == "Active":
        last_used = last_use.date if last_use else None
        breaches = request.policy.breaches(create_date, last_used, request.now)
    return AuditedKey(
        account=account,
        user_name=user_name,
        access_key_id=access_key_id,
        status=status,
        create_date=create_date,
        last_use=last_use,
        age_days=full_days(create_date, request.now),
        breaches=breaches,
    )

