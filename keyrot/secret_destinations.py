"""Destinations for a rotation's new secret: a profile, an env file, or the command's output.

Every destination is chosen and checked before any request is sent. A file is created only in a
folder that exists: keyrot never creates folders for a secret, so a mistyped path fails early
instead of sending the secret somewhere unexpected. A destination can also report whether it
already contains a given key ID. The recovery of an interrupted rotation uses that to decide
between finishing the job and rolling it back.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from keyrot.atomic_file import replace_file
from keyrot.errors import InvalidInputError, SafetyRefusal
from keyrot.models import NewAccessKey

ENV_ID_NAME = "AWS_ACCESS_KEY_ID"
ENV_SECRET_NAME = "AWS_SECRET_ACCESS_KEY"
ENV_TOKEN_NAMES = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
NEW_FILE_MODE = 0o600
ENV_LINE_PATTERN = re.compile(r"^(?P<prefix>\s*(?:export\s+)?)(?P<name>[A-Za-z_][A-Za-z0-9_]*)=")


@dataclass(frozen=True)
class SaveResult:
    """The file a secret was written to, if any, and a warning about that file."""

    path: Path | None
    warning: str | None = None


class Destination(Protocol):
    """A place that receives the new key's ID and secret."""

    def describe(self) -> str:
        """Return a phrase for messages, such as "[work] in /home/me/.aws/credentials"."""
        ...

    def to_record(self) -> dict[str, str]:
        """Return the destination as strings, for the journal and the JSON document."""
        ...

    def check(self) -> None:
        """Raise InvalidInputError if the destination cannot take a file; no request is sent."""
        ...

    def contains(self, access_key_id: str) -> bool | None:
        """Return whether the destination contains access_key_id now, or None if it cannot tell."""
        ...

    def save(self, new_key: NewAccessKey) -> SaveResult:
        """Write the new key; raise a KeyrotError, leaving the old content, if that fails."""
        ...


@dataclass(frozen=True)
class ProfileDestination:
    """A section of an AWS credentials or config file; create adds a missing file or section.

    With expected_access_key_id, saving fails (the file unchanged) unless the section still
    contains that key, so a key someone put there during the rotation is never overwritten.
    """

    path: Path
    section: str
    create: bool = False
    expected_access_key_id: str | None = None

    def describe(self) -> str:
        return f"[{self.section}] in {self.path}"

    def to_record(self) -> dict[str, str]:
        return {"Type": "profile", "Path": str(self.path), "Section": self.section}

    def check(self) -> None:
        check_folder_exists(self.path, "--credentials-file or AWS_SHARED_CREDENTIALS_FILE")

    def contains(self, access_key_id: str) -> bool:
        from keyrot.credentials import sections_with_key

        if not self.path.exists():
            return False
        return self.section in sections_with_key(self.path, access_key_id)

    def save(self, new_key: NewAccessKey) -> SaveResult:
        from keyrot.credentials import write_profile_key

        # write_profile_key would create a missing folder; a secret never goes into a new one.
        self.check()
        result = write_profile_key(
            self.path,
            self.section,
            new_key.key.access_key_id,
            new_key.secret_access_key,
            create=self.create,
            expected_access_key_id=self.expected_access_key_id,
        )
        return SaveResult(path=result.path, warning=result.mode_warning)


@dataclass(frozen=True)
class EnvFileDestination:
    """A file of KEY=value lines, as read by `docker --env-file`, systemd and dotenv loaders.

    Saving replaces the AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY lines (appending any that
    are missing), drops session token lines, and keeps every other line as it was. A symbolic
    link is written through to its target, as the credentials file is. The target keeps its
    permission bits, and a new file gets 0600; a warning names a file that others can read.
    """

    path: Path

    def describe(self) -> str:
        return f"env file {self.path}"

    def to_record(self) -> dict[str, str]:
        return {"Type": "env-file", "Path": str(self.path)}

    def check(self) -> None:
        check_folder_exists(self.path, "--env-file")

    def contains(self, access_key_id: str) -> bool:
        return _env_value(self._read_lines(), ENV_ID_NAME) == access_key_id

    def save(self, new_key: NewAccessKey) -> SaveResult:
        values = {
            ENV_ID_NAME: new_key.key.access_key_id,
            ENV_SECRET_NAME: new_key.secret_access_key,
        }
        content = "".join(_env_lines_with(self._read_lines(), values)).encode("utf-8")

        self.check()
        # A symbolic link stays in place: the file it points to is the one replaced.
        target = Path(os.path.realpath(self.path))
        mode = self._target_mode(target)
        try:
            replace_file(target, content, mode)
        except OSError as error:
            raise SafetyRefusal(
                f"writing {self.path} failed: {error.strerror or error}; it was left unchanged"
            ) from None
        return SaveResult(path=target, warning=_mode_warning(target, mode))

    def _target_mode(self, target: Path) -> int:
        """Return the permission bits the file keeps: its own, or 0600 for a new file."""
        try:
            status = os.stat(target)
        except FileNotFoundError:
            return NEW_FILE_MODE
        except OSError as error:
            raise SafetyRefusal(
                f"cannot read env file {self.path}: {error.strerror}; it was left unchanged"
            ) from None
        if not stat.S_ISREG(status.st_mode):
            raise SafetyRefusal(
                f"env file {self.path} is not a regular file; keyrot writes only to files, "
                "so it was left unchanged"
            )
        return stat.S_IMODE(status.st_mode)

    def _read_lines(self) -> list[str]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except UnicodeDecodeError:
            raise InvalidInputError(
                f"env file {self.path} is not UTF-8 text; give another --env-file"
            ) from None
        except OSError as error:
            raise InvalidInputError(
                f"cannot read env file {self.path}: {error.strerror}; give another --env-file"
            ) from None
        return text.splitlines(keepends=True)


@dataclass(frozen=True)
class OutputDestination:
    """The command's own output (--output json or --show-secret); nothing is written to disk."""

    def describe(self) -> str:
        return "the command output"

    def to_record(self) -> dict[str, str]:
        return {"Type": "output"}

    def check(self) -> None:
        return None

    def contains(self, access_key_id: str) -> None:
        return None

    def save(self, new_key: NewAccessKey) -> SaveResult:
        return SaveResult(path=None)


def check_folder_exists(path: Path, option: str) -> None:
    """Raise InvalidInputError unless the folder that would hold the file at path exists."""
    folder = Path(os.path.realpath(path)).parent
    if folder.is_dir():
        return
    raise InvalidInputError(
        f"the folder {folder} for {path} does not exist; create it first (mkdir -p -m 700 "
        f"{shlex.quote(str(folder))}) or fix the path given to {option}. keyrot does not "
        "create folders for secrets; nothing was changed"
    )


def destination_from_record(record: dict[str, str]) -> Destination:
    """Rebuild a destination written by to_record, as read back from a journal."""
    kind = record.get("Type")
    if kind == "profile":
        return ProfileDestination(Path(record["Path"]), record["Section"], create=True)
    if kind == "env-file":
        return EnvFileDestination(Path(record["Path"]))
    if kind == "output":
        return OutputDestination()
    raise InvalidInputError(f"unknown destination type {kind!r} in a recovery journal")


def _mode_warning(target: Path, mode: int) -> str | None:
    if not mode & 0o077:
        return None
    return (
        f"{target} is accessible to users other than its owner (mode {mode:04o}); "
        f"run chmod 600 {shlex.quote(str(target))}"
    )


def _env_value(lines: list[str], name: str) -> str | None:
    for line in lines:
        found = ENV_LINE_PATTERN.match(line)
        if found and found.group("name") == name:
            return line[found.end():].strip().strip("'\"")
    return None


def _env_lines_with(lines: list[str], values: dict[str, str]) -> list[str]:
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    written: set[str] = set()
    result: list[str] = []

    for line in lines:
        found = ENV_LINE_PATTERN.match(line)
        name = found.group("name") if found else None
        if name in ENV_TOKEN_NAMES:
            continue
        if found and name in values:
            ending = line[len(line.rstrip("\r\n")):] or newline
            result.append(f"{found.group('prefix')}{name}={values[name]}{ending}")
            written.add(name)
            continue
        result.append(line)

    if result and not result[-1].endswith("\n"):
        result[-1] += newline
    result.extend(f"{name}={value}{newline}" for name, value in values.items()
                  if name not in written)
    return result
