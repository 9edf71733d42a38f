"""Results on stdout as rich tables, one JSON document or tab-separated text; notes on stderr.

rich is imported only where a table or a styled line is drawn, so JSON and text output, which
scripts use most, start without it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from keyrot.models import AccessKey, iso_utc

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

MISSING = "-"


class Output:
    """The one writer of results (stdout) and of notes and warnings (stderr)."""

    def __init__(self, *, fmt: str, color: bool, quiet: bool) -> None:
        self.fmt = fmt
        self.quiet = quiet
        self._color = color
        self._stdout: Console | None = None
        self._stderr: Console | None = None

    @property
    def stdout(self) -> Console:
        if self._stdout is None:
            self._stdout = _console(sys.stdout, self._color)
        return self._stdout

    @property
    def stderr(self) -> Console:
        if self._stderr is None:
            self._stderr = _console(sys.stderr, self._color)
        return self._stderr

    def note(self, message: str) -> None:
        """Print an informational line on stderr, unless --quiet."""
        if not self.quiet:
            click.echo(f"keyrot: {message}", err=True)

    def warn(self, message: str) -> None:
        """Print a warning on stderr, unless --quiet."""
        if self.quiet:
            return
        line = f"keyrot: warning: {message}"
        # click.echo drops the colour codes itself when stderr is not a terminal.
        click.echo(click.style(line, fg="yellow") if self._color else line, err=True)

    def json_document(self, document: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        sys.stdout.flush()

    def text_lines(self, rows: Sequence[Sequence[str | None]]) -> None:
        for row in rows:
            cells = [MISSING if cell in (None, "") else str(cell) for cell in row]
            sys.stdout.write("\t".join(cells))
            sys.stdout.write("\n")
        sys.stdout.flush()

    def table(self, table: Table) -> None:
        """Print a table on stdout, unless --quiet; JSON and text results print regardless."""
        if self.quiet:
            return
        if self.stdout.is_terminal:
            self.stdout.print(table)
            return

        # rich pads every line to the table's width; a file or pipe gets the lines without it.
        with self.stdout.capture() as captured:
            self.stdout.print(table)
        lines = captured.get().splitlines()
        sys.stdout.write("".join(f"{line.rstrip()}\n" for line in lines))
        sys.stdout.flush()


def key_table(
    title: str,
    keys: Sequence[AccessKey],
    *,
    marked: frozenset[str] = frozenset(),
    mark_caption: str | None = None,
    now: datetime | None = None,
) -> Table:
    """Build a table of keys; rows whose key ID is in marked get a '*' and bold text."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    moment = now or datetime.now(UTC)
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  collapse_padding=True, caption=mark_caption if marked else None,
                  caption_justify="left")
    table.add_column("  Access key ID", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Created (age)", no_wrap=True)
    table.add_column("Last used")

    for key in keys:
        changed = key.access_key_id in marked
        table.add_row(
            f"{'*' if changed else ' '} {key.access_key_id}",
            Text(key.status, style="green" if key.status == "Active" else "red"),
            f"{key.create_date.astimezone(UTC):%Y-%m-%d} ({key.age_days(moment)}d)",
            _last_use_text(key),
            style="bold" if changed else None,
        )
    if not keys:
        table.add_row("  (no access keys)", "", "", "")
    return table


def key_row(key: AccessKey) -> list[str | None]:
    """Return a key as text fields: user, ID, status, created, last used, service, region."""
    last_use = key.last_use
    return [
        key.user_name,
        key.access_key_id,
        key.status,
        iso_utc(key.create_date),
        iso_utc(last_use.date) if last_use else None,
        last_use.service if last_use else None,
        last_use.region if last_use else None,
    ]


def _last_use_text(key: AccessKey) -> str:
    if key.last_use is None:
        return "unknown"
    if key.last_use.date is None:
        return "never"
    where = " ".join(part for part in (key.last_use.service, key.last_use.region) if part)
    return f"{key.last_use.date.astimezone(UTC):%Y-%m-%d} {where}".rstrip()


def _console(stream: Any, color: bool) -> Console:
    from rich.console import Console

    # rich already turns styles off when the stream is not a terminal or TERM=dumb. --no-color
    # and NO_COLOR turn off every escape code, bold included, not only the colours.
    if not color:
        return Console(file=stream, color_system=None, highlight=False, soft_wrap=False)
    return Console(file=stream, highlight=False, soft_wrap=False)
