"""Exclusive locks and atomic replacement for small files that hold secrets (POSIX only).

These functions raise OSError for the caller to translate; a failed replace_file leaves the target
as it was and removes its temporary file.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger(__name__)

LOCK_POLL_SECONDS = 0.05

# Lock files held by this process, per thread, with their nesting depth. An flock() lock belongs to
# an open file description, so a second open() and flock() of a lock file this process holds would
# wait on itself. A nested exclusive_lock in the same thread therefore only counts the depth.
_held_locks: dict[tuple[int, str], int] = {}
_held_locks_guard = threading.Lock()


class LockTimeoutError(Exception):
    """Another process held the lock file for longer than the timeout."""

    def __init__(self, lock_path: Path, timeout: float) -> None:
        super().__init__(f"{lock_path} stayed locked for {timeout:g} seconds")
        self.lock_path = lock_path
        self.timeout = timeout


def lock_path_for(target: Path) -> Path:
    """Return the path of target's lock file, "<name>.lock" in the same folder."""
    return target.with_name(f"{target.name}.lock")


@contextmanager
def exclusive_lock(lock_path: Path, timeout: float) -> Iterator[None]:
    """Hold an exclusive flock() on lock_path, waiting up to timeout seconds for another holder.

    The lock file is created with mode 0600 and left in place afterwards: deleting a lock file
    lets a waiting process lock a file that no longer has that name.
    """
    key = (threading.get_ident(), str(lock_path))
    with _held_locks_guard:
        depth = _held_locks.get(key, 0)
        if depth:
            _held_locks[key] = depth + 1
    if depth:
        try:
            yield
        finally:
            _release_nested(key)
        return

    descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        _wait_for_lock(descriptor, lock_path, timeout)
        with _held_locks_guard:
            _held_locks[key] = 1
        try:
            yield
        finally:
            with _held_locks_guard:
                del _held_locks[key]
    finally:
        os.close(descriptor)


def replace_file(target: Path, data: bytes, mode: int) -> None:
    """Replace target with data atomically: a reader sees either the old or the new file.

    The temporary file is created in target's folder with mode 0600 before any data is written,
    gets target's owner and the given mode once written, is flushed to disk, and is renamed over
    target. A failure before the rename leaves target untouched and removes the temporary file.
    NOTE: the rename gives target a new inode, so other hard links to it keep the old content.
    """
    folder = target.parent
    temporary = folder / f".{target.name}.{os.urandom(6).hex()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
    descriptor = os.open(temporary, flags, 0o600)
    try:
        try:
            _write_all(descriptor, data)
            _copy_owner(descriptor, target)
            os.fchmod(descriptor, mode)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, target)
    except BaseException:
        _remove_temporary(temporary)
        raise

    _sync_folder(folder)


def _release_nested(key: tuple[int, str]) -> None:
    with _held_locks_guard:
        _held_locks[key] -= 1


def _wait_for_lock(descriptor: int, lock_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise LockTimeoutError(lock_path, timeout) from None
            time.sleep(LOCK_POLL_SECONDS)


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(descriptor, view)
        view = view[written:]


def _copy_owner(descriptor: int, target: Path) -> None:
    """Give the temporary file target's owner and group, as an in-place edit would keep them."""
    try:
        original = os.stat(target)
    except FileNotFoundError:
        return
    current = os.fstat(descriptor)
    if (original.st_uid, original.st_gid) != (current.st_uid, current.st_gid):
        os.fchown(descriptor, original.st_uid, original.st_gid)


def _remove_temporary(temporary: Path) -> None:
    try:
        os.unlink(temporary)
    except FileNotFoundError:
        pass
    except OSError as error:
        logger.warning(
            "could not remove the temporary file %s, which contains a secret: %s; "
            "delete it by hand",
            temporary,
            error,
        )


def _sync_folder(folder: Path) -> None:
    """Flush the folder entry so the rename survives a crash; the rename has happened either way."""
    try:
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as error:
        logger.warning("could not open %s to flush the rename to disk: %s", folder, error)
        return
    try:
        os.fsync(descriptor)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOTSUP):
            logger.warning("could not flush the rename in %s to disk: %s", folder, error)
    finally:
        os.close(descriptor)
