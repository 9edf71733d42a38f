"""Typed records for IAM identities and access keys, and their JSON forms."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any


def iso_utc(moment: datetime | None) -> str | None:
    """Format moment as ISO 8601 in UTC with a trailing Z, as the AWS CLI prints dates."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Identity:
    """The principal that signs keyrot's requests, from STS GetCallerIdentity."""

    account: str
    arn: str
    user_name: str | None
    is_root: bool

    @classmethod
    def from_arn(cls, account: str, arn: str) -> Identity:
        """Build an Identity from a caller ARN; an IAM path such as user/team/Bob means Bob."""
        resource = arn.split(":", 5)[5] if arn.count(":") >= 5 else ""
        if resource == "root":
            return cls(account=account, arn=arn, user_name=None, is_root=True)

        kind, _, rest = resource.partition("/")
        user_name = rest.rsplit("/", 1)[-1] if kind == "user" and rest else None
        return cls(account=account, arn=arn, user_name=user_name, is_root=False)

    @property
    def label(self) -> str:
        """A short name for messages: the user name, or root, or the ARN."""
        if self.is_root:
            return f"root of account {self.account}"
        return self.user_name or self.arn


@dataclass(frozen=True)
class LastUse:
    """When, where and with which service an access key was last used, if ever."""

    date: datetime | None = None
    service: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class AccessKey:
    """One access key's metadata as IAM lists it, with its last use where known."""

    user_name: str
    access_key_id: str
    status: str
    create_date: datetime
    last_use: LastUse | None = None

    def with_status(self, status: str) -> AccessKey:
        return replace(self, status=status)

    def with_last_use(self, last_use: LastUse) -> AccessKey:
        return replace(self, last_use=last_use)

    def age_days(self, now: datetime) -> int:
        return (now - self.create_date).days

    def to_json(self) -> dict[str, Any]:
        """Return the record with the field names that `aws iam list-access-keys` prints."""
        record: dict[str, Any] = {
            "UserName": self.user_name,
            "AccessKeyId": self.access_key_id,
            "Status": self.status,
            "CreateDate": iso_utc(self.create_date),
        }
        if self.last_use is not None:
            record["LastUsedDate"] = iso_utc(self.last_use.date)
            record["LastUsedService"] = self.last_use.service
            record["LastUsedRegion"] = self.last_use.region
        return record


@dataclass(frozen=True)
class NewAccessKey:
    """A key just returned by CreateAccessKey; the only record that contains a secret."""

    key: AccessKey
    secret_access_key: str

    def __repr__(self) -> str:
        return f"NewAccessKey(key={self.key!r}, secret_access_key=<hidden>)"
