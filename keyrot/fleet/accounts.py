"""Running fleet work in several AWS accounts through an IAM role assumed in each (STS AssumeRole).

The role ARN is arn:PARTITION:iam::ACCOUNT:role/NAME, with the partition (aws, aws-cn,
aws-us-gov) taken from the caller's own ARN. Accounts run in parallel; an account whose role
cannot be assumed, or whose work fails, is recorded as an AccountFailure and the others go on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import boto3

from keyrot.aws_errors import translated
from keyrot.errors import InvalidInputError, KeyrotError
from keyrot.iam import IamService

T = TypeVar("T")

ACCOUNT_ID_PATTERN = re.compile(r"\d{12}")
# A role name may carry an IAM path, as in team/KeyAuditor.
ROLE_NAME_PATTERN = re.compile(r"[\w+=,.@-]{1,64}(/[\w+=,.@-]{1,64})*")
MAX_PARALLEL_ACCOUNTS = 4


@dataclass(frozen=True)
class AccountFailure:
    """An account that was skipped, with the error that stopped it."""

    account_id: str
    message: str
    exit_code: int

    def to_json(self) -> dict[str, str | int]:
        return {"Account": self.account_id, "Error": self.message, "ExitCode": self.exit_code}


@dataclass(frozen=True)
class AccountResult(Generic[T]):
    account_id: str
    value: T


@dataclass(frozen=True)
class AccountRuns(Generic[T]):
    """Results in the order the accounts were given, and the accounts that failed."""

    results: list[AccountResult[T]]
    failures: list[AccountFailure]


def parse_account_ids(text: str, source: str) -> tuple[str, ...]:
    """Read account IDs separated by commas, spaces or new lines; `#` starts a comment."""
    words = []
    for line in text.splitlines():
        words.extend(re.split(r"[\s,]+", line.split("#", 1)[0].strip()))
    account_ids = [word for word in words if word]

    invalid = [word for word in account_ids if not ACCOUNT_ID_PATTERN.fullmatch(word)]
    if invalid:
        raise InvalidInputError(
            f"invalid AWS account ID {invalid[0]!r} in {source}; an account ID is 12 digits"
        )
    if not account_ids:
        raise InvalidInputError(f"no AWS account ID in {source}")
    return tuple(dict.fromkeys(account_ids))


def read_accounts_file(path: Path) -> tuple[str, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InvalidInputError(
            f"cannot read the accounts file {path}: {error.strerror or error}"
        ) from None
    return parse_account_ids(text, f"the accounts file {path}")


def check_role_name(role_name: str) -> str:
    if not ROLE_NAME_PATTERN.fullmatch(role_name):
        raise InvalidInputError(
            f"invalid role name {role_name!r}; a role name is 1 to 64 letters, digits and "
            "+=,.@_- characters, optionally after a path such as team/"
        )
    return role_name


def role_arn(caller_arn: str, account_id: str, role_name: str) -> str:
    """Return the ARN of role_name in account_id, in the caller's partition."""
    parts = caller_arn.split(":")
    partition = parts[1] if len(parts) > 1 and parts[1] else "aws"
    return f"arn:{partition}:iam::{account_id}:role/{role_name}"


def assume_role(service: IamService, account_id: str, role_name: str, session_name: str
                ) -> IamService:
    """Assume role_name in account_id and return a service signed with the temporary keys."""
    caller_arn = service.caller().arn
    arn = role_arn(caller_arn, account_id, role_name)
    trust = f"the trust policy of role {arn} does not trust the caller {caller_arn}"
    with translated(f"assume role {arn}", denied_hint=trust):
        response = service.sts_client.assume_role(RoleArn=arn, RoleSessionName=session_name)
    credentials = response["Credentials"]

    settings = service.settings
    with translated(f"set up a session for account {account_id}"):
        session = boto3.Session(
            profile_name=settings.profile,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=service.iam_client.meta.region_name,
        )
    return IamService(session, settings)


def run_in_accounts(
    service: IamService,
    account_ids: tuple[str, ...],
    role_name: str,
    session_name: str,
    work: Callable[[str, IamService], T],
) -> AccountRuns[T]:
    """Run work(account_id, service) in each account through the assumed role, in parallel."""

    def run_one(account_id: str) -> AccountResult[T] | AccountFailure:
        try:
            assumed = assume_role(service, account_id, role_name, session_name)
            return AccountResult(account_id, work(account_id, assumed))
        except KeyrotError as error:
            return AccountFailure(account_id, error.message, error.exit_code)

    service.caller()
    workers = min(MAX_PARALLEL_ACCOUNTS, len(account_ids))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="keyrot-account") as pool:
        outcomes = list(pool.map(run_one, account_ids))

    results = [outcome for outcome in outcomes if isinstance(outcome, AccountResult)]
    failures = [outcome for outcome in outcomes if isinstance(outcome, AccountFailure)]
    return AccountRuns(results=results, failures=failures)


def run_here(service: IamService, work: Callable[[str, IamService], T]) -> AccountRuns[T]:
    """Run work in the caller's own account; its errors propagate with their exit status."""
    account_id = service.caller().account
    return AccountRuns(results=[AccountResult(account_id, work(account_id, service))],
                       failures=[])
