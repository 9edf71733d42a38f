"""The IAM credential report: generating it, waiting for it, and parsing its CSV.

One report lists every IAM user of an account (and the root, as `<root_account>`) with the state,
creation time and last use of up to two access keys, in a few API calls whatever the number of
users. It contains no access key IDs. AWS reuses a report for up to four hours, so its statuses
and last-use dates can lag; the report's GeneratedTime says how much.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from keyrot.aws_errors import translated
from keyrot.errors import AwsRequestError
from keyrot.models import AccessKey, LastUse

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

ROOT_USER = "<root_account>"
# Values the report prints where a date, region or service does not apply or is not known.
MISSING_VALUES = frozenset({"", "N/A", "no_information", "not_supported"})
# Error codes of GetCredentialReport that mean "generate it, or wait, and ask again".
NOT_READY_CODES = frozenset({"ReportInProgress", "ReportNotPresent", "ReportExpired"})
KEY_SLOTS = (1, 2)
KEY_FIELDS = ("active", "last_rotated", "last_used_date", "last_used_region",
              "last_used_service")
REQUIRED_COLUMNS = (
    "user",
    "arn",
    *(f"access_key_{slot}_{field}" for slot in KEY_SLOTS for field in KEY_FIELDS),
)
FIRST_WAIT_SECONDS = 0.5
MAX_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class ReportKey:
    """One access key as the report shows it: slot 1 or 2, no key ID."""

    slot: int
    active: bool
    create_date: datetime
    last_use: LastUse

    @property
    def status(self) -> str:
        return "Active" if self.active else "Inactive"


@dataclass(frozen=True)
class ReportUser:
    """One line of the report: an IAM user, or the account root."""

    user_name: str
    arn: str
    keys: tuple[ReportKey, ...]

    @property
    def is_root(self) -> bool:
        return self.user_name == ROOT_USER


@dataclass(frozen=True)
class CredentialReport:
    generated: datetime | None
    users: tuple[ReportUser, ...]


WaitNotice = Callable[[str], None]


def fetch_report(
    client: IAMClient,
    *,
    timeout: float,
    on_wait: WaitNotice,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> CredentialReport:
    """Generate the credential report if needed, wait until it is ready, and parse it.

    on_wait receives the generation state (such as STARTED or INPROGRESS) before each wait.
    Raises AwsRequestError when the report is still not ready after timeout seconds.
    """
    deadline = clock() + timeout
    delay = FIRST_WAIT_SECONDS
    while True:
        state = _generate(client)
        if state == "COMPLETE":
            fetched = _get(client)
            if fetched is not None:
                content, generated = fetched
                return parse_report(content, generated)
            state = "INPROGRESS"

        if clock() + delay > deadline:
            raise AwsRequestError(
                f"the IAM credential report was still being generated after {timeout:g} s; "
                "run the command again later, or raise --report-timeout"
            )
        on_wait(state)
        sleep(delay)
        delay = min(delay * 2, MAX_WAIT_SECONDS)


def _generate(client: IAMClient) -> str:
    with translated("generate the IAM credential report"):
        return str(client.generate_credential_report().get("State", "STARTED"))


def _get(client: IAMClient) -> tuple[str, datetime | None] | None:
    with translated("read the IAM credential report"):
        try:
            response = client.get_credential_report()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in NOT_READY_CODES:
                return None
            raise
    content = response.get("Content", b"")
    text = content.decode("utf-8-sig") if isinstance(content, bytes) else str(content)
    return text, response.get("GeneratedTime")


def parse_report(content: str, generated: datetime | None = None) -> CredentialReport:
    """Parse the report's CSV; a missing column or an unreadable date raises AwsRequestError."""
    reader = csv.DictReader(io.StringIO(content))
    missing = [name for name in REQUIRED_COLUMNS if name not in (reader.fieldnames or [])]
    if missing:
        raise AwsRequestError(
            f"the IAM credential report has no column {', '.join(missing)}; "
            "it cannot be read as an IAM credential report"
        )

    users = [_parse_user(row, line) for line, row in enumerate(reader, start=2)]
    return CredentialReport(generated=generated, users=tuple(users))


def _parse_user(row: dict[str, str], line: int) -> ReportUser:
    keys = []
    for slot in KEY_SLOTS:
        prefix = f"access_key_{slot}_"
        create_date = _parse_date(row, f"{prefix}last_rotated", line)
        if create_date is None:
            # No key in this slot.
            continue
        last_use = LastUse(
            date=_parse_date(row, f"{prefix}last_used_date", line),
            service=_value(row[f"{prefix}last_used_service"]),
            region=_value(row[f"{prefix}last_used_region"]),
        )
        active = row[f"{prefix}active"].strip().lower() == "true"
        keys.append(ReportKey(slot=slot, active=active, create_date=create_date,
                              last_use=last_use))
    return ReportUser(user_name=row["user"], arn=row["arn"], keys=tuple(keys))


def _parse_date(row: dict[str, str], column: str, line: int) -> datetime | None:
    text = _value(row[column])
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise AwsRequestError(
            f"the IAM credential report line {line} has {text!r} in column {column}, which is "
            "neither a date nor N/A"
        ) from None
    # The report writes UTC offsets; a date without one is taken as UTC.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _value(text: str | None) -> str | None:
    stripped = (text or "").strip()
    return None if stripped in MISSING_VALUES else stripped


def merge_listed_keys(listed: list[AccessKey], report_keys: tuple[ReportKey, ...]
                      ) -> list[AccessKey]:
    """Give keys from ListAccessKeys the last use that the report shows for them.

    The report has no key IDs, so a listed key is matched to the report key created in the same
    second. NOTE: when two keys of a user were created in the same second, they are matched in
    list order, which is creation order in the IAM API but is not documented as such. A key the
    report does not show (created after the report) gets no last use (shown as unknown).
    """
    unmatched = list(report_keys)
    merged = []
    for key in listed:
        same_second = [
            candidate for candidate in unmatched
            if _to_second(candidate.create_date) == _to_second(key.create_date)
        ]
        if not same_second:
            merged.append(key)
            continue
        unmatched.remove(same_second[0])
        merged.append(key.with_last_use(same_second[0].last_use))
    return merged


def _to_second(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)
