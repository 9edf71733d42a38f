"""Finding a profile's access key in the AWS shared credentials and config files, and rewriting it.

Profiles resolve as botocore resolves them: a [NAME] section in the credentials file that has an
aws_access_key_id wins, then [profile NAME] (or [default]) in the config file. A rewrite changes
only the two key values of one section, drops its session token, and replaces the file atomically
under a lock. The line editing lives in keyrot.ini_edit, the locking and renaming in
keyrot.atomic_file.
"""

from __future__ import annotations

import errno
import os
import shlex
import stat
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from keyrot.atomic_file import (
    LockTimeoutError,
    exclusive_lock,
    lock_path_for,
    replace_file,
)
from keyrot.errors import InvalidInputError, NotFoundError, SafetyRefusal
from keyrot.ini_edit import (
    DEFAULT_SECTION,
    SINGLE_LINE_VALUE,
    IniFile,
    IniFormatError,
    Section,
    SectionEdit,
    apply_edit,
    check_editable,
    read_ini,
)

ACCESS_KEY_ID = "aws_access_key_id"
SECRET_ACCESS_KEY = "aws_secret_access_key"
SESSION_TOKENS = ("aws_session_token", "aws_security_token")
KEY_OPTIONS = (ACCESS_KEY_ID, SECRET_ACCESS_KEY)
CREDENTIAL_OPTIONS = (*KEY_OPTIONS, *SESSION_TOKENS)
NEW_FILE_MODE = 0o600
NEW_FOLDER_MODE = 0o700
DEFAULT_LOCK_TIMEOUT = 10.0


class CredentialsFileWriteError(SafetyRefusal):
    """Writing a credentials or config file failed, and the file was left as it was."""


class CredentialsFileLockedError(SafetyRefusal):
    """Another process held the credentials file's lock for too long; nothing was changed."""


class CredentialsFileChangedError(SafetyRefusal):
    """The section no longer held the expected access key when keyrot came to write it."""


@dataclass(frozen=True)
class ProfileKey:
    """A profile's long-term key, with the file and section that contain it."""

    path: Path  # the file as configured (may be a symlink; writes go to its target)
    section: str  # the exact section name: "work", "profile work" or "default"
    access_key_id: str
    secret_access_key: str
    has_session_token: bool  # the section has aws_session_token or aws_security_token


@dataclass(frozen=True)
class WriteResult:
    """The file a write replaced, its permission bits, and a warning if others can read it."""

    path: Path  # the real file written (the symlink's target)
    mode: int
    mode_warning: str | None


@dataclass(frozen=True)
class _KeyWrite:
    section: str
    access_key_id: str
    secret_access_key: str
    create: bool
    expected_access_key_id: str | None


def credentials_file_path() -> Path:
    """AWS_SHARED_CREDENTIALS_FILE, or ~/.aws/credentials, with ~ and $VARS expanded."""
    return _configured_path("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")


def config_file_path() -> Path:
    """AWS_CONFIG_FILE, or ~/.aws/config, with ~ and $VARS expanded."""
    return _configured_path("AWS_CONFIG_FILE", "~/.aws/config")


def find_profile_key(
    profile: str, *, credentials_path: Path | None = None, config_path: Path | None = None
) -> ProfileKey:
    """Find the file and section that contain profile's access key, and check they can be edited.

    Raises NotFoundError if no file has the profile with both key options, and InvalidInputError
    if a file cannot be read, or parsed and edited with certainty.
    """
    credentials_path = credentials_path or credentials_file_path()
    config_path = config_path or config_file_path()
    credentials = _read_optional(credentials_path)
    config = _read_optional(config_path)

    candidates: list[tuple[Path, IniFile, Section]] = []
    if credentials is not None:
        section = credentials.section(profile)
        if section is not None and section.name != DEFAULT_SECTION:
            candidates.append((credentials_path, credentials, section))
    if config is not None:
        section = _config_profile_section(config_path, config, profile)
        if section is not None:
            candidates.append((config_path, config, section))

    for path, ini, section in candidates:
        if ACCESS_KEY_ID in section.options:
            return _profile_key(path, ini, section, profile)
    raise NotFoundError(_not_found_message(profile, credentials_path, config_path, candidates))


def sections_with_key(path: Path, access_key_id: str) -> list[str]:
    """Name every section of the file at path whose aws_access_key_id is access_key_id."""
    ini = _read_optional(path)
    if ini is None:
        return []
    return [
        section.name
        for section in ini.sections
        if ACCESS_KEY_ID in section.options
        and section.options[ACCESS_KEY_ID].value == access_key_id
    ]


def write_profile_key(
    path: Path,
    section: str,
    access_key_id: str,
    secret_access_key: str,
    *,
    create: bool = False,
    expected_access_key_id: str | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> WriteResult:
    """Set the two key values of section in the file at path, and drop its session token lines.

    Every other byte stays as it was. With create, a missing file (mode 0600, in a folder made
    0700), section or option is added; without it, each is a NotFoundError. With
    expected_access_key_id, the section must still contain that key under the lock, or
    CredentialsFileChangedError is raised. Raises InvalidInputError for a file that cannot be
    edited with certainty, and CredentialsFileWriteError (the file unchanged) when the operating
    system fails the write.
    """
    _check_new_value(ACCESS_KEY_ID, access_key_id)
    _check_new_value(SECRET_ACCESS_KEY, secret_access_key)
    request = _KeyWrite(section, access_key_id, secret_access_key, create, expected_access_key_id)
    target = Path(os.path.realpath(path))
    if create:
        _make_folder(target.parent)
    elif not target.exists():
        raise NotFoundError(f"{path} does not exist; nothing was changed")

    with locked(path, timeout=lock_timeout):
        original, mode = _read_target(path, target, create=create)
        updated = _edited_bytes(path, original, request)
        if updated != original:
            _replace(path, target, updated, mode)

    return WriteResult(path=target, mode=mode, mode_warning=_mode_warning(target, mode))


@contextmanager
def locked(path: Path, *, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the lock that keeps keyrot runs from changing the file at path at the same time.

    The lock is a "<name>.lock" file beside the symlink's target. It can be nested in one thread,
    so a caller can hold it across steps that call write_profile_key.
    """
    lock_path = lock_path_for(Path(os.path.realpath(path)))
    with ExitStack() as stack:
        try:
            stack.enter_context(exclusive_lock(lock_path, timeout))
        except LockTimeoutError:
            raise CredentialsFileLockedError(
                f"another process has held the lock {lock_path} for {timeout:g} seconds, so "
                f"{path} was not changed; run keyrot again when the other run has finished"
            ) from None
        except OSError as error:
            raise CredentialsFileWriteError(
                f"could not lock {path}: cannot open {lock_path}: {error.strerror}; the file "
                "was not changed"
            ) from None
        yield


def _configured_path(variable: str, default: str) -> Path:
    # botocore expands $VARS before ~.
    raw = os.environ.get(variable) or default
    return Path(os.path.expanduser(os.path.expandvars(raw)))


def _read_optional(path: Path) -> IniFile | None:
    """Parse the file at path, or return None if it does not exist."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise InvalidInputError(f"cannot read {path}: {error.strerror}") from None
    return _parse(path, data)


def _parse(path: Path, data: bytes) -> IniFile:
    try:
        ini = read_ini(data)
    except IniFormatError as error:
        raise _unsafe_file_error(path, error) from None

    default = ini.section(DEFAULT_SECTION)
    if default is not None:
        applied = [name for name in CREDENTIAL_OPTIONS if name in default.options]
        if applied:
            raise _unsafe_file_error(
                path,
                IniFormatError(
                    default.options[applied[0]].index + 1,
                    f"[{DEFAULT_SECTION}] sets {applied[0]} for every profile in the file; "
                    "move it into the profile that uses it",
                ),
            )
    return ini


def _unsafe_file_error(path: Path, error: IniFormatError) -> InvalidInputError:
    where = f"{path}, line {error.line_number}" if error.line_number else str(path)
    return InvalidInputError(
        f"cannot safely parse {where}: {error.reason}; fix the file by hand, then run keyrot again"
    )


def _config_profile_section(path: Path, config: IniFile, profile: str) -> Section | None:
    """Return the config file's section for profile: [profile NAME], or [default] for default.

    botocore splits "profile NAME" with shlex, so [profile  work] and [profile "work"] are both
    profile work. botocore lets the later of two such sections win, but keyrot rejects the file.
    """
    matches = [section for section in config.sections if _config_profile_name(section) == profile]
    if len(matches) > 1:
        first, second = matches[0], matches[1]
        raise _unsafe_file_error(
            path,
            IniFormatError(
                second.index + 1,
                f"[{second.name}] and [{first.name}] (line {first.index + 1}) both define "
                f"profile {profile}",
            ),
        )
    return matches[0] if matches else None


def _config_profile_name(section: Section) -> str | None:
    if section.name == "default":
        return "default"
    if not section.name.startswith("profile"):
        return None
    try:
        parts = shlex.split(section.name)
    except ValueError:
        return None
    return parts[1] if len(parts) == 2 else None


def _profile_key(path: Path, ini: IniFile, section: Section, profile: str) -> ProfileKey:
    try:
        check_editable(ini, section, KEY_OPTIONS, CREDENTIAL_OPTIONS)
    except IniFormatError as error:
        raise _unsafe_file_error(path, error) from None

    for name in KEY_OPTIONS:
        option = section.options.get(name)
        if option is None or not option.value:
            raise NotFoundError(
                f"profile {profile} in {path} (section [{section.name}]) has no {name} value; "
                "add it, or choose a profile that has one"
            )

    return ProfileKey(
        path=path,
        section=section.name,
        access_key_id=section.options[ACCESS_KEY_ID].value,
        secret_access_key=section.options[SECRET_ACCESS_KEY].value,
        has_session_token=any(name in section.options for name in SESSION_TOKENS),
    )


def _not_found_message(
    profile: str,
    credentials_path: Path,
    config_path: Path,
    candidates: list[tuple[Path, IniFile, Section]],
) -> str:
    if candidates:
        path, _, section = candidates[0]
        return (
            f"profile {profile} in {path} (section [{section.name}]) has no {ACCESS_KEY_ID}; "
            "add the key there, or choose a profile that has one"
        )
    return (
        f"profile {profile} not found in {credentials_path} or {config_path}; "
        "check the profile name"
    )


def _check_new_value(name: str, value: str) -> None:
    if not SINGLE_LINE_VALUE.fullmatch(value):
        raise InvalidInputError(f"invalid new {name}: it must be printable ASCII without spaces")


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(mode=NEW_FOLDER_MODE, parents=True, exist_ok=True)
    except OSError as error:
        raise CredentialsFileWriteError(
            f"could not create the folder {folder}: {error.strerror}; nothing was changed"
        ) from None


def _read_target(path: Path, target: Path, *, create: bool) -> tuple[bytes, int]:
    """Return the target's bytes and permission bits; a missing file is empty, mode 0600."""
    try:
        status = os.stat(target)
        if not stat.S_ISREG(status.st_mode):
            raise InvalidInputError(f"{path} is not a regular file; keyrot writes only to files")
        return target.read_bytes(), stat.S_IMODE(status.st_mode)
    except FileNotFoundError:
        if create:
            return b"", NEW_FILE_MODE
        raise NotFoundError(f"{path} does not exist; nothing was changed") from None
    except OSError as error:
        raise InvalidInputError(f"cannot read {path}: {error.strerror}") from None


def _edited_bytes(path: Path, original: bytes, request: _KeyWrite) -> bytes:
    if request.section == DEFAULT_SECTION:
        raise InvalidInputError(
            f"cannot write a key into [{DEFAULT_SECTION}] of {path}: it applies to every profile"
        )
    ini = _parse(path, original)
    existing = ini.section(request.section)
    if not request.create:
        _check_present(path, existing, request.section)
    if existing is not None:
        try:
            check_editable(ini, existing, KEY_OPTIONS, CREDENTIAL_OPTIONS)
        except IniFormatError as error:
            raise _unsafe_file_error(path, error) from None
    if request.expected_access_key_id is not None:
        _check_unchanged(path, existing, request)

    edit = SectionEdit(
        section=request.section,
        set_values={
            ACCESS_KEY_ID: request.access_key_id,
            SECRET_ACCESS_KEY: request.secret_access_key,
        },
        remove_options=frozenset(SESSION_TOKENS),
        add_missing=request.create,
    )
    try:
        return apply_edit(ini, edit)
    except IniFormatError as error:
        raise _unsafe_file_error(path, error) from None


def _check_unchanged(path: Path, existing: Section | None, request: _KeyWrite) -> None:
    option = existing.options.get(ACCESS_KEY_ID) if existing is not None else None
    current = option.value if option is not None else None
    if current != request.expected_access_key_id:
        raise CredentialsFileChangedError(
            f"{path} changed while keyrot was running: section [{request.section}] contains "
            f"access key {current or '(none)'}, not {request.expected_access_key_id}, so "
            "nothing was written; check the file and run keyrot again"
        )


def _check_present(path: Path, existing: Section | None, section: str) -> None:
    if existing is None:
        raise NotFoundError(f"{path} has no section [{section}]; nothing was changed")
    for name in KEY_OPTIONS:
        if name not in existing.options:
            raise NotFoundError(
                f"section [{section}] in {path} has no {name} line; nothing was changed"
            )


def _replace(path: Path, target: Path, data: bytes, mode: int) -> None:
    try:
        replace_file(target, data, mode)
    except OSError as error:
        name = errno.errorcode.get(error.errno or 0, "unknown error")
        raise CredentialsFileWriteError(
            f"could not write {path}: {error.strerror or error} ({name}); the file was not changed"
        ) from None


def _mode_warning(target: Path, mode: int) -> str | None:
    if not mode & 0o077:
        return None
    return (
        f"{target} is accessible to users other than its owner (mode {mode:04o}); "
        f"run chmod 600 {shlex.quote(str(target))}"
    )
