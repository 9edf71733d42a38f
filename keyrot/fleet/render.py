"""Tables and text lines for fleet audits and bulk runs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from rich import box
from rich.table import Table
from rich.text import Text

from keyrot.fleet.audit import BREAKS_POLICY, COMPLIANT, AuditedKey, AuditSummary
from keyrot.fleet.bulk import DONE, FAILED, PLANNED, BulkKey
from keyrot.fleet.policy import OLDER_THAN, UNUSED_FOR
from keyrot.models import LastUse, iso_utc

NO_ID = "(not listed)"
STATE_STYLES = {COMPLIANT: "green", BREAKS_POLICY: "bold red"}
RESULT_STYLES = {DONE: "green", FAILED: "bold red", PLANNED: "yellow"}
# Short table labels for the limits a key breaks, so that a table with an Account column still
# fits 80 columns; JSON and text output use the full names, which the table caption gives.
BREACH_LABELS = {OLDER_THAN: "old", UNUSED_FOR: "unused"}


def audit_table(title: str, keys: Sequence[AuditedKey], *, show_account: bool) -> Table:
    table = _table(title)
    if show_account:
        table.add_column("Account", no_wrap=True)
    table.add_column("User")
    table.add_column("Access key ID", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Age", justify="right", no_wrap=True)
    table.add_column("Last used")
    table.add_column("Policy", min_width=9)

    for key in keys:
        cells: list[str | Text] = [
            key.user_name,
            key.access_key_id or NO_ID,
            Text(key.status, style=_status_style(key.status)),
            f"{key.age_days}d",
            last_use_text(key.last_use),
            Text(_breach_text(key.breaches) or key.state, style=STATE_STYLES.get(key.state, "")),
        ]
        table.add_row(*([key.account] if show_account else []), *cells)
    if not keys:
        table.add_row(*([""] if show_account else []), "(no access keys)", "", "", "", "", "")
    table.caption = _breach_caption("Policy", [key.breaches for key in keys])
    return table


def summary_tables(summary: AuditSummary) -> list[Table]:
    counts = _table("Summary")
    counts.add_column("Users and keys")
    counts.add_column("Count", justify="right")
    counts.add_row("users", str(summary.users))
    counts.add_row("users without access keys", str(summary.users_without_keys))
    counts.add_row("access keys", str(summary.keys))
    for state, count in summary.by_state.items():
        counts.add_row(f"  {state}", str(count))
    for reason, count in summary.by_breach.items():
        counts.add_row(f"  {BREAKS_POLICY}: {reason}", str(count))

    bands = _table("Access keys by age")
    bands.add_column("Age")
    bands.add_column("Count", justify="right")
    for label, count in summary.by_age_band.items():
        bands.add_row(label, str(count))
    return [counts, bands]


def audit_row(key: AuditedKey) -> list[str | None]:
    """Return a key as text fields: account, user, ID, status, created, last used, service,
    region, age in days, state, breaches."""
    last_use = key.last_use or LastUse()
    return [
        key.account, key.user_name, key.access_key_id, key.status, iso_utc(key.create_date),
        iso_utc(last_use.date), last_use.service, last_use.region, str(key.age_days), key.state,
        ",".join(key.breaches),
    ]


def bulk_table(title: str, keys: Sequence[BulkKey], *, show_account: bool) -> Table:
    """Build the plan or result table; a key's status shows in its result, such as
    "unchanged: already Inactive", so it has no column of its own."""
    table = _table(title)
    if show_account:
        table.add_column("Account", no_wrap=True)
    table.add_column("User")
    table.add_column("Access key ID", no_wrap=True)
    table.add_column("Age", justify="right", no_wrap=True)
    table.add_column("Last used", no_wrap=True)
    table.add_column("Breaks")
    table.add_column("Result", ratio=1, min_width=12)

    for key in keys:
        cells: list[str | Text] = [
            key.user_name,
            key.access_key_id or NO_ID,
            f"{key.age_days}d",
            last_use_text(key.last_use, with_place=False),
            _breach_text(key.breaches),
            Text(_result_text(key), style=RESULT_STYLES.get(key.result, "")),
        ]
        table.add_row(*([key.account] if show_account else []), *cells)
    table.caption = _breach_caption("Breaks", [key.breaches for key in keys])
    return table


def _breach_caption(column: str, breaches: Sequence[tuple[str, ...]]) -> str | None:
    """Return a caption naming the short labels used in column, or None if none shows."""
    shown = [breach for breach in BREACH_LABELS if any(breach in found for found in breaches)]
    if not shown:
        return None
    labels = ", ".join(f"{BREACH_LABELS[breach]} = {breach}" for breach in shown)
    return f"{column}: {labels} (as in JSON and text output)"


def _breach_text(breaches: tuple[str, ...]) -> str:
    return ", ".join(BREACH_LABELS.get(breach, breach) for breach in breaches)


def _result_text(key: BulkKey) -> str:
    # A planned or done key's detail is the action itself, such as "deactivate" or "deleted".
    if key.result in (PLANNED, DONE):
        return key.detail
    return f"{key.result}: {key.detail}"


def bulk_row(key: BulkKey) -> list[str | None]:
    """Return a key as text fields: account, user, ID, status, created, last used, service,
    region, age in days, breaches, result, detail."""
    last_use = key.last_use or LastUse()
    return [
        key.account, key.user_name, key.access_key_id, key.status, iso_utc(key.create_date),
        iso_utc(last_use.date), last_use.service, last_use.region, str(key.age_days),
        ",".join(key.breaches), key.result, key.detail,
    ]


def last_use_text(last_use: LastUse | None, *, with_place: bool = True) -> str:
    if last_use is None:
        return "unknown"
    if last_use.date is None:
        return "never"
    places = (last_use.service, last_use.region) if with_place else ()
    where = " ".join(part for part in places if part)
    return f"{last_use.date.astimezone(UTC):%Y-%m-%d} {where}".rstrip()


def _created(create_date: datetime, age_days: int) -> str:
    return f"{create_date.astimezone(UTC):%Y-%m-%d} ({age_days}d)"


def _status_style(status: str) -> str:
    return "green" if status == "Active" else "red"


def _table(title: str) -> Table:
    return Table(title=title, title_justify="left", caption_justify="left", box=box.SIMPLE_HEAD,
                 pad_edge=False, collapse_padding=True)
