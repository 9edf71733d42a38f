"""The key policy: which access keys are too old or unused for too long, counted in full days.

A key is older than N days when at least N full days (N x 24 hours) have passed since its
CreateDate: with N = 90, a key 90 days old to the second is selected, and one a second younger
is not. A key is unused for N days when at least N full days have passed since its last use, or
since its CreateDate if it was never used. A key that breaks either limit breaks the policy.
Dates count to the whole second, as the credential report and the AWS CLI print them, so a key
gets the same verdict whether its dates come from the report or from the IAM API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

OLDER_THAN = "older-than"
UNUSED_FOR = "unused-for"
ONE_DAY = timedelta(days=1)

# Age bands for summaries: (first day, first day of the next band or None, label).
AGE_BANDS: tuple[tuple[int, int | None, str], ...] = (
    (0, 30, "0-29 days"),
    (30, 90, "30-89 days"),
    (90, 180, "90-179 days"),
    (180, 365, "180-364 days"),
    (365, None, "365+ days"),
)


def full_days(since: datetime, now: datetime) -> int:
    """Return the number of whole 24-hour days from since, cut to the second, to now (negative
    if since is later)."""
    return (now - since.replace(microsecond=0)) // ONE_DAY


def age_band(age_days: int) -> str:
    for first, next_first, label in AGE_BANDS:
        if age_days >= first and (next_first is None or age_days < next_first):
            return label
    # A CreateDate in the future (clock skew) counts as brand new.
    return AGE_BANDS[0][2]


@dataclass(frozen=True)
class KeyPolicy:
    """Limits in days; None switches that limit off."""

    older_than_days: int | None
    unused_for_days: int | None

    def breaches(
        self, create_date: datetime, last_used: datetime | None, now: datetime
    ) -> tuple[str, ...]:
        """Return the limits a key with these dates breaks at now: OLDER_THAN, UNUSED_FOR."""
        found = []
        if self.older_than_days is not None and full_days(create_date, now) >= self.older_than_days:
            found.append(OLDER_THAN)
        idle_since = last_used or create_date
        if self.unused_for_days is not None and full_days(idle_since, now) >= self.unused_for_days:
            found.append(UNUSED_FOR)
        return tuple(found)

    def breached_by_age(self, create_date: datetime, now: datetime) -> bool:
        return OLDER_THAN in KeyPolicy(self.older_than_days, None).breaches(create_date, None, now)

    def describe(self) -> str:
        """Return the limits as a phrase such as "older than 90 days or unused for 30 days"."""
        parts = []
        if self.older_than_days is not None:
            parts.append(f"older than {self.older_than_days} days")
        if self.unused_for_days is not None:
            parts.append(f"unused for {self.unused_for_days} days")
        return " or ".join(parts) or "no limit"

    def to_json(self) -> dict[str, int | None]:
        return {"OlderThanDays": self.older_than_days, "UnusedForDays": self.unused_for_days}
