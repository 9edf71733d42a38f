"""Progress on stderr for long fleet runs: rich on a terminal, nothing otherwise."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


class ProgressTask(Protocol):
    def advance(self) -> None: ...


class ProgressReporter(Protocol):
    """The progress sink that fleet logic reports to; implementations decide whether to show it."""

    def waiting(self, message: str) -> None:
        """Show that the run waits on something, such as a credential report being generated."""

    def task(self, description: str, total: int) -> AbstractContextManager[ProgressTask]:
        """Open a counted task (total steps) that is closed when the block ends."""
        ...


class _SilentTask:
    def advance(self) -> None:
        return

    def __enter__(self) -> _SilentTask:
        return self

    def __exit__(self, *_: object) -> None:
        return


class SilentProgress:
    """Shows nothing: for scripts, CI logs, --quiet and tests."""

    def __enter__(self) -> SilentProgress:
        return self

    def __exit__(self, *_: object) -> None:
        return

    def waiting(self, message: str) -> None:
        return

    def task(self, description: str, total: int) -> AbstractContextManager[ProgressTask]:
        return _SilentTask()


class _RichTask:
    def __init__(self, progress: Progress, task_id: TaskID) -> None:
        self._progress = progress
        self._task_id = task_id

    def advance(self) -> None:
        self._progress.advance(self._task_id)

    def __enter__(self) -> _RichTask:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _error: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self._progress.remove_task(self._task_id)


class RichProgress:
    """A spinner and progress bars on stderr, shown only while the run is inside this block."""

    def __init__(self, *, color: bool) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        console = Console(file=sys.stderr, no_color=not color)
        self._progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console, transient=True,
        )
        self._waiting: TaskID | None = None

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._progress.stop()

    def waiting(self, message: str) -> None:
        if self._waiting is None:
            self._waiting = self._progress.add_task(message, total=None)
        else:
            self._progress.update(self._waiting, description=message)

    def task(self, description: str, total: int) -> AbstractContextManager[ProgressTask]:
        self._clear_waiting()
        return _RichTask(self._progress, self._progress.add_task(description, total=total))

    def _clear_waiting(self) -> None:
        if self._waiting is not None:
            self._progress.remove_task(self._waiting)
            self._waiting = None


def progress_for(*, quiet: bool, color: bool) -> RichProgress | SilentProgress:
    """Return rich progress when stderr is a terminal and the user did not ask for quiet."""
    if quiet or not sys.stderr.isatty():
        return SilentProgress()
    return RichProgress(color=color)
