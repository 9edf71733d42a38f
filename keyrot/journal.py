"""The recovery journal of a rotation: what it is about to do, and the new key's secret.

A rotation records its intent before CreateAccessKey, and the new key's ID and secret the moment
CreateAccessKey returns. A run killed after that point loses no secret, and the next run for the
same profile or user reads the journal and finishes or rolls back the job. A run killed while
CreateAccessKey is in flight leaves only the intent. If IAM did create the key, its secret never
reached keyrot, so the next run names that key for deletion by hand.

Journals live in KEYROT_STATE_DIR, else $XDG_STATE_HOME/keyrot, else ~/.local/state/keyrot. Each
is a JSON file of mode 0600 in a folder of mode 0700, replaced atomically on every write.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from keyrot.atomic_file import LockTimeoutError, exclusive_lock, replace_file
from keyrot.errors import InvalidInputError, SafetyRefusal

STATE_DIR_VARIABLE = "KEYROT_STATE_DIR"
JOURNAL_VERSION = 1
LOCK_WAIT_SECONDS = 2.0

Stage = Literal["creating", "created"]


@dataclass(frozen=True)
class Journal:
    """One rotation in progress.

    Stage "creating" is written before CreateAccessKey, with the key IDs the user had. Stage
    "created" adds the new key, written before anything else happens to it.
    """

    scope: str
    stage: Stage
    user_name: str | None
    old_access_key_id: str
    retire: str
    destination: dict[str, str]
    started_at: str
    existing_key_ids: list[str] = field(default_factory=list)
    new_access_key_id: str | None = None
    new_secret_access_key: str | None = None

    def __repr__(self) -> str:
        return (
            f"Journal(scope={self.scope!r}, stage={self.stage!r}, "
            f"new_access_key_id={self.new_access_key_id!r}, new_secret_access_key=<hidden>)"
        )


def state_dir() -> Path:
    """Return the folder of keyrot's recovery journals."""
    configured = os.environ.get(STATE_DIR_VARIABLE)
    if configured:
        return Path(configured).expanduser()
    xdg_state = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg_state).expanduser() if xdg_state else Path.home() / ".local" / "state"
    return base / "keyrot"


def journal_path(scope: str) -> Path:
    """Return the journal file for a scope such as "profile:/home/me/.aws/credentials:work"."""
    digest = hashlib.sha256(scope.encode("utf-8")).hexdigest()[:20]
    return state_dir() / f"rotate-{digest}.json"


def load(scope: str) -> Journal | None:
    """Return the journal of an unfinished rotation in scope, or None when there is none."""
    path = journal_path(scope)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise SafetyRefusal(
            f"cannot read the recovery journal {path}: {error.strerror}; fix its permissions "
            "and run the rotation again"
        ) from None

    try:
        document: dict[str, Any] = json.loads(text)
        if document.pop("version", None) != JOURNAL_VERSION:
            raise ValueError("unknown version")
        journal = Journal(**document)
    except (ValueError, TypeError) as error:
        raise InvalidInputError(
            f"the recovery journal {path} is not valid ({error}); it may hold a new key's "
            "secret, so inspect it, then move it away and run the rotation again"
        ) from None
    return journal


def save(journal: Journal) -> Path:
    """Write journal atomically with mode 0600; raise SafetyRefusal if it cannot be written."""
    path = journal_path(journal.scope)
    document = {"version": JOURNAL_VERSION, **asdict(journal)}
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        replace_file(path, json.dumps(document, indent=2).encode("utf-8"), 0o600)
    except OSError as error:
        raise SafetyRefusal(
            f"cannot write the recovery journal {path}: {error.strerror}; set "
            f"{STATE_DIR_VARIABLE} to a writable folder"
        ) from None
    return path


def remove(scope: str) -> None:
    """Delete the journal of scope, if there is one."""
    journal_path(scope).unlink(missing_ok=True)


@contextmanager
def rotation_lock(scope: str) -> Iterator[None]:
    """Hold a lock that keeps two rotations of one scope apart for the whole run.

    Without it, a second run would take the first run's journal for an interrupted rotation
    and roll it back under the first run's feet. The lock is an flock(), so the kernel releases
    it when a run dies, even by SIGKILL.
    """
    path = journal_path(scope).with_suffix(".lock")
    with ExitStack() as stack:
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            stack.enter_context(exclusive_lock(path, LOCK_WAIT_SECONDS))
        except LockTimeoutError:
            raise SafetyRefusal(
                f"another keyrot rotate of the same profile or user is running (it holds "
                f"{path}); nothing was changed. Wait for it to finish, then run again"
            ) from None
        except OSError as error:
            raise SafetyRefusal(
                f"cannot create the lock file {path}: {error.strerror}; set "
                f"{STATE_DIR_VARIABLE} to a writable folder"
            ) from None
        yield
