"""Listing one user's access keys with their last use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keyrot.iam import IamService
from keyrot.keystatus import Subject, resolve_subject
from keyrot.models import AccessKey


@dataclass(frozen=True)
class KeyListing:
    subject: Subject
    keys: list[AccessKey]

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "UserName": self.subject.display_name,
            "AccessKeys": [key.to_json() for key in self.keys],
        }
        caller = self.subject.caller_json()
        if caller is not None:
            document["Caller"] = caller
        return document


def list_user_keys(service: IamService, user_name: str | None) -> KeyListing:
    """Return a user's keys (the caller's when user_name is None) with last-use details."""
    subject = resolve_subject(service, user_name)
    keys = service.with_last_use(service.list_keys(user_name))
    return KeyListing(subject=subject, keys=keys)
