"""Fleet mode: auditing every user's access keys against a policy, and enforcing it in bulk,
in one account or in several through an assumed role."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from keyrot.models import LastUse, iso_utc


class FleetKey(Protocol):
    """The fields that audited and bulk-selected keys share."""

    @property
    def account(self) -> str: ...
    @property
    def user_name(self) -> str: ...
    @property
    def access_key_id(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def create_date(self) -> datetime: ...
    @property
    def last_use(self) -> LastUse | None: ...
    @property
    def age_days(self) -> int: ...


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """Return count with noun in the right number: "1 account", "2 accounts"."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def key_fields(key: FleetKey) -> dict[str, Any]:
    """Return the JSON fields every fleet key record starts with, in the IAM API's names."""
    last_use = key.last_use or LastUse()
    return {
        "Account": key.account,
        "UserName": key.user_name,
        "AccessKeyId": key.access_key_id,
        "Status": key.status,
        "CreateDate": iso_utc(key.create_date),
        "LastUsedDate": iso_utc(last_use.date),
        "LastUsedService": last_use.service,
        "LastUsedRegion": last_use.region,
        "AgeDays": key.age_days,
    }
