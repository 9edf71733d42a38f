"""Tests for keyrot.credentials: byte-exact key rewrites, profile lookup, atomic writes and locks.

Every file is a copy in tmp_path. Expected bytes are rebuilt by the tests themselves (the original
with the old key text replaced and the listed token lines dropped), and configparser and botocore
must read the same values before and after, apart from the new key.
"""

from __future__ import annotations

import configparser
import copy
import dataclasses
import errno
import io
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import botocore.configloader
import botocore.exceptions
import botocore.session
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyrot import atomic_file
from keyrot.credentials import (
    CredentialsFileChangedError,
    CredentialsFileLockedError,
    CredentialsFileWriteError,
    ProfileKey,
    config_file_path,
    credentials_file_path,
    find_profile_key,
    locked,
    sections_with_key,
    write_profile_key,
)
from keyrot.errors import InvalidInputError, KeyrotError, NotFoundError
from keyrot.ini_edit import IniFormatError, merge_defaults, parse_ini

TESTS = Path(__file__).parent
CORPUS = TESTS / "corpus"
SHARED_CASES = TESTS / "cases"
NEW_KEY_ID = "AKIANEWKEY0000000001"
NEW_SECRET = "newSecret/0123+abcdefghijklmnopqrstuvw"
TOKEN_OPTIONS = ("aws_session_token", "aws_security_token")
OLD_KEY_PATTERN = re.compile(rb"(?:AKIA|ASIA)OLDKEY\w*")
OLD_SECRET_PATTERN = re.compile(rb"oldSecret[\w/+=]*")
UTF8_BOM = b"\xef\xbb\xbf"


# ---------------------------------------------------------------------------------------------
# helpers


def copy_shared_case(tmp_path: Path, name: str, mode: int = 0o600) -> Path:
    target = tmp_path / name
    target.write_bytes((SHARED_CASES / name).read_bytes())
    target.chmod(mode)
    return target


def write_file(path: Path, data: bytes, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    return path


def configparser_view(path: Path) -> dict[str, dict[str, str]]:
    """What configparser.RawConfigParser reads, DEFAULT merged as configparser merges it."""
    parser = configparser.RawConfigParser()
    parser.read(path, encoding="utf-8-sig")
    view = {name: dict(parser.items(name)) for name in parser.sections()}
    view["DEFAULT"] = dict(parser.defaults())
    return view


def with_new_key(view: dict, section: str) -> dict:
    """view with section's key replaced by the new one and its session tokens removed."""
    expected = copy.deepcopy(view)
    options = expected[section]
    for name in TOKEN_OPTIONS:
        options.pop(name, None)
    options["aws_access_key_id"] = NEW_KEY_ID
    options["aws_secret_access_key"] = NEW_SECRET
    return expected


def botocore_view(path: Path) -> dict | type[Exception]:
    try:
        return botocore.configloader.raw_config_parse(str(path))
    except botocore.exceptions.ConfigParseError:
        return botocore.exceptions.ConfigParseError


def session_credentials(monkeypatch, profile: str, credentials: Path, config: Path):
    """The credentials a botocore Session resolves for profile from these two files only."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    resolved = botocore.session.Session(profile=profile).get_credentials()
    assert resolved is not None
    return resolved.get_frozen_credentials()


def rewrite(path: Path, section: str, **options) -> object:
    return write_profile_key(path, section, NEW_KEY_ID, NEW_SECRET, **options)


def changed_lines(before: bytes, after: bytes) -> list[tuple[bytes, bytes]]:
    old_lines = before.splitlines(keepends=True)
    new_lines = after.splitlines(keepends=True)
    assert len(old_lines) == len(new_lines)
    return [(old, new) for old, new in zip(old_lines, new_lines, strict=True) if old != new]


def fail_on_temporary_file(monkeypatch, name: str, error_number: int):
    """Make os.NAME raise OSError(error_number) for keyrot's temporary files; others pass."""
    real = getattr(os, name)
    calls = []

    def is_temporary(argument) -> bool:
        if isinstance(argument, int):
            argument = os.readlink(f"/proc/self/fd/{argument}")
        return str(argument).endswith(".tmp")

    def failing(first, *arguments, **keywords):
        if is_temporary(first):
            calls.append(first)
            raise OSError(error_number, os.strerror(error_number))
        return real(first, *arguments, **keywords)

    monkeypatch.setattr(os, name, failing)
    return calls


def temporary_files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(".tmp"))


# ---------------------------------------------------------------------------------------------
# the corpus: one case per file in tests/corpus


@dataclass(frozen=True)
class CorpusCase:
    kind: str  # "credentials" or "config"
    profile: str
    section: str
    removed_lines: tuple[int, ...] = ()  # 1-based lines (session tokens) that must disappear
    occurrence: int = 0  # which occurrence of the old key text belongs to the edited section


def credentials_case(section: str, **fields) -> CorpusCase:
    return CorpusCase("credentials", section, section, **fields)


def config_case(profile: str, section: str, **fields) -> CorpusCase:
    return CorpusCase("config", profile, section, **fields)


CORPUS_CASES = {
    "aws-configure-style.ini": credentials_case("work"),
    "basic-lf.ini": credentials_case("default"),
    "blank-lines-with-spaces.ini": credentials_case("work"),
    "bom-crlf-no-final-newline.ini": credentials_case("work"),
    "bom-lf.ini": credentials_case("work"),
    "both-tokens.ini": credentials_case("work", removed_lines=(2, 4)),
    "case-distinct-sections.ini": credentials_case("work"),
    "colon-separators.ini": credentials_case("work"),
    "comments-between-options.ini": credentials_case("work"),
    "continuation-other-section.ini": credentials_case("work"),
    "cr-only.ini": credentials_case("work"),
    "crlf.ini": credentials_case("work"),
    "default-section-region.ini": credentials_case("work"),
    "empty-values.ini": credentials_case("work"),
    "header-trailing-text.ini": credentials_case("work"),
    "indented-options.ini": credentials_case("work"),
    "many-profiles.ini": credentials_case("work"),
    "mixed-line-endings.ini": credentials_case("work"),
    "mixed-padding.ini": credentials_case("work"),
    "no-final-newline.ini": credentials_case("work"),
    "odd-whitespace.ini": credentials_case("work"),
    "other-credential-sources.ini": credentials_case("work"),
    "same-key-elsewhere.ini": credentials_case("work", occurrence=1),
    "secret-before-id.ini": credentials_case("work"),
    "security-token-multiline.ini": credentials_case("work", removed_lines=(3, 4, 5)),
    "session-token.ini": credentials_case("work", removed_lines=(4,)),
    "tabs.ini": credentials_case("work"),
    "target-first.ini": credentials_case("work"),
    "unicode-comments.ini": credentials_case("work"),
    "uppercase-names.ini": credentials_case("work"),
    "values-with-delimiters.ini": credentials_case("work"),
    "config-crlf-bom.ini": config_case("work", "profile work"),
    "config-default.ini": config_case("default", "default"),
    "config-nested-s3.ini": config_case("work", "profile work"),
    "config-profile-spacing.ini": config_case("work", "profile   work"),
    "config-profile.ini": config_case("work", "profile work"),
    "config-quoted-profile.ini": config_case("work", 'profile "work"'),
    "config-session-token.ini": config_case("work", "profile work", removed_lines=(4,)),
    "config-sso-services.ini": config_case("work", "profile work"),
}


def expected_bytes(original: bytes, case: CorpusCase) -> bytes:
    """original without the listed lines and with the edited section's old key text replaced."""
    lines = original.splitlines(keepends=True)
    kept = b"".join(
        line for number, line in enumerate(lines, start=1) if number not in case.removed_lines
    )
    for pattern, new in ((OLD_KEY_PATTERN, NEW_KEY_ID), (OLD_SECRET_PATTERN, NEW_SECRET)):
        match = list(pattern.finditer(kept))[case.occurrence]
        kept = kept[: match.start()] + new.encode() + kept[match.end() :]
    return kept


def install_corpus_file(tmp_path: Path, name: str, *, via_symlink: bool) -> Path:
    real = write_file(tmp_path / "real" / name, (CORPUS / name).read_bytes())
    if not via_symlink:
        return real
    link = tmp_path / "links" / name
    link.parent.mkdir()
    link.symlink_to(real)
    return link


def test_corpus_lists_every_file():
    on_disk = {path.name for path in CORPUS.glob("*.ini")}

    assert on_disk == set(CORPUS_CASES)
    assert len(on_disk) >= 30


@pytest.mark.parametrize("via_symlink", [False, True], ids=["file", "symlink"])
@pytest.mark.parametrize("name", sorted(CORPUS_CASES))
def test_corpus_rewrite_changes_only_key(tmp_path, monkeypatch, name, via_symlink):
    case = CORPUS_CASES[name]
    path = install_corpus_file(tmp_path, name, via_symlink=via_symlink)
    missing = tmp_path / "missing"
    files = {"credentials_path": missing, "config_path": missing, f"{case.kind}_path": path}
    original = path.read_bytes()
    parsed_before = configparser_view(path)
    botocore_before = botocore_view(path)

    found = find_profile_key(case.profile, **files)
    result = rewrite(path, found.section)

    after = path.read_bytes()
    assert found.section == case.section
    assert OLD_KEY_PATTERN.fullmatch(found.access_key_id.encode())
    assert OLD_SECRET_PATTERN.fullmatch(found.secret_access_key.encode())
    assert found.has_session_token == bool(case.removed_lines)
    assert after == expected_bytes(original, case)
    assert configparser_view(path) == with_new_key(parsed_before, case.section)
    if botocore_before is botocore.exceptions.ConfigParseError:
        assert original.startswith(UTF8_BOM)
        assert botocore_view(path) is botocore.exceptions.ConfigParseError
    else:
        assert botocore_view(path) == with_new_key(botocore_before, case.section)
    assert result.path == path.resolve()
    assert path.is_symlink() == via_symlink


@pytest.mark.parametrize(
    "name", sorted(name for name in CORPUS_CASES if not name.startswith(("bom", "config-crlf-bom")))
)
def test_corpus_botocore_session_resolves_new_key(tmp_path, monkeypatch, name):
    case = CORPUS_CASES[name]
    path = install_corpus_file(tmp_path, name, via_symlink=False)
    missing = tmp_path / "missing"
    files = {"credentials": missing, "config": missing, case.kind: path}

    rewrite(path, case.section)
    resolved = session_credentials(monkeypatch, case.profile, **files)

    assert resolved.access_key == NEW_KEY_ID
    assert resolved.secret_key == NEW_SECRET
    assert resolved.token is None


# ---------------------------------------------------------------------------------------------
# the shared field cases


def test_comments_case_changes_two_lines(tmp_path):
    path = copy_shared_case(tmp_path, "comments.ini")
    before = path.read_bytes()

    found = find_profile_key("work", credentials_path=path, config_path=tmp_path / "none")
    rewrite(path, found.section)

    assert found == ProfileKey(path, "work", "AKIAIOSFODNN7EXAMPLE", "OLDSECRET", False)
    assert changed_lines(before, path.read_bytes()) == [
        (
            b"aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n",
            f"aws_access_key_id = {NEW_KEY_ID}\n".encode(),
        ),
        (
            b"aws_secret_access_key = OLDSECRET\n",
            f"aws_secret_access_key = {NEW_SECRET}\n".encode(),
        ),
    ]


def test_two_profiles_case_keeps_tmp_section(tmp_path):
    path = copy_shared_case(tmp_path, "two-profiles.ini")
    before = path.read_bytes()

    found = find_profile_key("default", credentials_path=path, config_path=tmp_path / "none")
    rewrite(path, found.section)

    after = path.read_bytes()
    assert found.section == "default"
    assert before.split(b"[tmp]")[1] == after.split(b"[tmp]")[1]
    assert (
        after.split(b"[tmp]")[0]
        == (
            f"[default]\naws_access_key_id={NEW_KEY_ID}\naws_secret_access_key={NEW_SECRET}\n\n"
        ).encode()
    )


def test_sections_with_key_names_every_section(tmp_path):
    original = (SHARED_CASES / "two-profiles.ini").read_bytes()
    path = write_file(
        tmp_path / "credentials", original.replace(b"ASIAEXAMPLETMP00001", b"AKIAIOSFODNN7EXAMPLE")
    )

    sections = sections_with_key(path, "AKIAIOSFODNN7EXAMPLE")
    rewrite(path, "default")

    assert sections == ["default", "tmp"]
    assert sections_with_key(path, "AKIAIOSFODNN7EXAMPLE") == ["tmp"]
    assert sections_with_key(path, NEW_KEY_ID) == ["default"]
    assert sections_with_key(tmp_path / "absent", NEW_KEY_ID) == []


def test_padding_case_keeps_separators_and_tabs(tmp_path):
    path = copy_shared_case(tmp_path, "padding.ini")

    rewrite(path, "work")

    assert (
        path.read_bytes()
        == (
            f"[work]\naws_access_key_id     = {NEW_KEY_ID}\n"
            f"aws_secret_access_key\t=\t{NEW_SECRET}   \nregion: eu-west-1\n"
        ).encode()
    )


def test_padding_case_missing_profile_is_not_found(tmp_path):
    path = copy_shared_case(tmp_path, "padding.ini")
    config = tmp_path / "config"

    with pytest.raises(NotFoundError) as raised:
        find_profile_key("personal", credentials_path=path, config_path=config)

    assert raised.value.exit_code == 3
    assert str(path) in raised.value.message
    assert str(config) in raised.value.message
    assert "personal" in raised.value.message


@pytest.mark.parametrize("dropped", [b"aws_access_key_id", b"aws_secret_access_key"])
def test_missing_key_line_is_not_found(tmp_path, dropped):
    original = (SHARED_CASES / "padding.ini").read_bytes()
    kept = b"".join(
        line for line in original.splitlines(keepends=True) if not line.startswith(dropped)
    )
    path = write_file(tmp_path / "credentials", kept)

    with pytest.raises(NotFoundError) as found_error:
        find_profile_key("work", credentials_path=path, config_path=tmp_path / "config")
    with pytest.raises(NotFoundError) as write_error:
        rewrite(path, "work")

    for raised in (found_error, write_error):
        assert raised.value.exit_code == 3
        assert str(path) in raised.value.message
        assert "work" in raised.value.message
    assert path.read_bytes() == kept


def test_uppercase_case_keeps_option_case(tmp_path, monkeypatch):
    path = copy_shared_case(tmp_path, "uppercase.ini")

    found = find_profile_key("work", credentials_path=path, config_path=tmp_path / "none")
    rewrite(path, found.section)

    assert found.access_key_id == "AKIAIOSFODNN7EXAMPLE"
    assert (
        path.read_bytes()
        == (
            f"[work]\nAWS_ACCESS_KEY_ID = {NEW_KEY_ID}\nAWS_SECRET_ACCESS_KEY = {NEW_SECRET}\n"
        ).encode()
    )
    parser = configparser.RawConfigParser()
    parser.read(path)
    assert parser.get("work", "aws_access_key_id") == NEW_KEY_ID
    resolved = session_credentials(monkeypatch, "work", path, tmp_path / "none")
    assert (resolved.access_key, resolved.secret_key) == (NEW_KEY_ID, NEW_SECRET)


def test_temporary_case_reports_and_drops_token(tmp_path):
    path = copy_shared_case(tmp_path, "temporary.ini")

    found = find_profile_key("work", credentials_path=path, config_path=tmp_path / "none")
    rewrite(path, found.section)

    assert found.has_session_token
    assert found.access_key_id == "ASIAEXAMPLETMP00001"
    assert (
        path.read_bytes()
        == (
            f"[work]\naws_access_key_id = {NEW_KEY_ID}\naws_secret_access_key = {NEW_SECRET}\n"
        ).encode()
    )


def test_root_case_rewrites_root_section(tmp_path):
    path = copy_shared_case(tmp_path, "root.ini")

    found = find_profile_key("root", credentials_path=path, config_path=tmp_path / "none")
    rewrite(path, found.section)

    assert found.section == "root"
    assert (
        path.read_bytes()
        == (
            f"[root]\naws_access_key_id = {NEW_KEY_ID}\naws_secret_access_key = {NEW_SECRET}\n"
        ).encode()
    )


# ---------------------------------------------------------------------------------------------
# file modes, under umask 022


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_private_file_stays_0600(tmp_path, umask_022):
    path = copy_shared_case(tmp_path, "comments.ini", mode=0o600)

    result = rewrite(path, "work")

    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    assert result.mode == 0o600
    assert result.mode_warning is None


def test_readable_file_stays_0644_with_warning(tmp_path, umask_022):
    path = copy_shared_case(tmp_path, "comments.ini", mode=0o644)

    result = rewrite(path, "work")

    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
    assert result.mode == 0o644
    assert result.mode_warning is not None
    assert "0644" in result.mode_warning
    assert f"chmod 600 {path}" in result.mode_warning


def test_temporary_file_is_0600_before_secret(tmp_path, umask_022, monkeypatch):
    path = copy_shared_case(tmp_path, "comments.ini", mode=0o644)
    real_write = os.write
    modes_at_write = []

    def recording_write(descriptor, data):
        if os.readlink(f"/proc/self/fd/{descriptor}").endswith(".tmp"):
            modes_at_write.append(os.fstat(descriptor).st_mode & 0o777)
        return real_write(descriptor, data)

    monkeypatch.setattr(os, "write", recording_write)
    rewrite(path, "work")

    assert modes_at_write
    assert set(modes_at_write) == {0o600}


def test_created_file_is_0600_in_0700_folder(tmp_path, umask_022):
    path = tmp_path / "home" / "new-aws" / "credentials"

    result = rewrite(path, "work", create=True)

    assert (
        path.read_bytes()
        == (
            f"[work]\naws_access_key_id = {NEW_KEY_ID}\naws_secret_access_key = {NEW_SECRET}\n"
        ).encode()
    )
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    assert oct(path.parent.stat().st_mode & 0o777) == oct(0o700)
    assert result.mode_warning is None


def test_missing_file_without_create_is_not_found(tmp_path):
    path = tmp_path / "credentials"

    with pytest.raises(NotFoundError) as raised:
        rewrite(path, "work")

    assert str(path) in raised.value.message
    assert not path.exists()


# ---------------------------------------------------------------------------------------------
# failed writes leave the file as it was


@pytest.mark.parametrize(
    ("call", "error_number"),
    [
        ("write", errno.ENOSPC),
        ("fsync", errno.EIO),
        ("fchmod", errno.EPERM),
        ("close", errno.EDQUOT),
        ("replace", errno.ENOSPC),
        ("open", errno.ENOSPC),
    ],
)
def test_failed_write_leaves_file_unchanged(tmp_path, monkeypatch, call, error_number):
    path = copy_shared_case(tmp_path, "two-profiles.ini")
    before = path.read_bytes()
    calls = fail_on_temporary_file(monkeypatch, call, error_number)

    with pytest.raises(CredentialsFileWriteError) as raised:
        rewrite(path, "default")

    assert calls
    assert path.read_bytes() == before
    assert temporary_files(tmp_path) == []
    assert raised.value.exit_code == 5
    assert str(path) in raised.value.message
    assert errno.errorcode[error_number] in raised.value.message
    assert NEW_SECRET not in raised.value.message


def test_partial_write_then_full_disk(tmp_path, monkeypatch):
    path = copy_shared_case(tmp_path, "comments.ini")
    before = path.read_bytes()
    real_write = os.write

    def short_then_full(descriptor, data):
        if not os.readlink(f"/proc/self/fd/{descriptor}").endswith(".tmp"):
            return real_write(descriptor, data)
        if len(data) > 10:
            return real_write(descriptor, bytes(data[:10]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", short_then_full)
    with pytest.raises(CredentialsFileWriteError) as raised:
        rewrite(path, "work")

    assert path.read_bytes() == before
    assert temporary_files(tmp_path) == []
    assert "ENOSPC" in raised.value.message


# ---------------------------------------------------------------------------------------------
# symbolic links


def test_symlink_stays_link_and_target_changes(tmp_path):
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    real = copy_shared_case(dotfiles, "comments.ini")
    aws = tmp_path / "aws-link-folder"
    aws.mkdir()
    link = aws / "credentials"
    link.symlink_to(Path("..") / "dotfiles" / "comments.ini")

    found = find_profile_key("work", credentials_path=link, config_path=tmp_path / "none")
    result = rewrite(link, found.section)

    assert found.path == link
    assert link.is_symlink()
    assert os.readlink(link) == str(Path("..") / "dotfiles" / "comments.ini")
    assert result.path == real.resolve()
    assert NEW_KEY_ID.encode() in real.read_bytes()
    assert sorted(path.name for path in aws.iterdir()) == ["credentials"]
    assert sorted(path.name for path in dotfiles.iterdir()) == ["comments.ini", "comments.ini.lock"]


def test_symlink_chain_writes_final_target(tmp_path):
    real = copy_shared_case(tmp_path, "root.ini")
    middle = tmp_path / "middle"
    middle.symlink_to(real)
    first = tmp_path / "first"
    first.symlink_to(middle)

    result = rewrite(first, "root")

    assert first.is_symlink()
    assert middle.is_symlink()
    assert result.path == real
    assert NEW_KEY_ID.encode() in real.read_bytes()


# ---------------------------------------------------------------------------------------------
# the lock

HOLD_LOCK = """
import sys
from pathlib import Path
from keyrot.credentials import locked

with locked(Path(sys.argv[1])):
    print("locked", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def lock_holder(tmp_path):
    """Start another process that holds the lock on a file until its stdin is closed."""
    processes = []

    def hold(path: Path) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        assert process.stdout.readline() == "locked\n"
        return process

    yield hold
    for process in processes:
        process.stdin.close()
        process.wait(timeout=10)


def test_lock_held_elsewhere_refuses_write(tmp_path, lock_holder):
    path = copy_shared_case(tmp_path, "comments.ini")
    before = path.read_bytes()
    lock_holder(path)

    with pytest.raises(CredentialsFileLockedError) as raised:
        rewrite(path, "work", lock_timeout=0.2)

    assert raised.value.exit_code == 5
    assert str(path) in raised.value.message
    assert path.read_bytes() == before


def test_lock_through_symlink_is_same_lock(tmp_path, lock_holder):
    path = copy_shared_case(tmp_path, "comments.ini")
    link = tmp_path / "credentials"
    link.symlink_to(path)
    lock_holder(path)

    with pytest.raises(CredentialsFileLockedError):
        rewrite(link, "work", lock_timeout=0.1)


def test_writer_waits_for_lock_release(tmp_path, lock_holder, monkeypatch):
    path = copy_shared_case(tmp_path, "comments.ini")
    holder = lock_holder(path)
    waiting = threading.Event()
    outcome = []

    class SignallingTime:
        monotonic = staticmethod(time.monotonic)

        @staticmethod
        def sleep(seconds: float) -> None:
            waiting.set()
            time.sleep(seconds)

    def write_in_thread():
        try:
            outcome.append(rewrite(path, "work", lock_timeout=60))
        except Exception as error:  # reported through outcome
            outcome.append(error)

    monkeypatch.setattr(atomic_file, "time", SignallingTime)
    writer = threading.Thread(target=write_in_thread)
    writer.start()
    assert waiting.wait(timeout=30)
    unchanged_while_held = NEW_KEY_ID.encode() not in path.read_bytes()
    holder.stdin.close()
    holder.wait(timeout=10)
    writer.join(timeout=30)

    assert unchanged_while_held
    assert len(outcome) == 1
    assert not isinstance(outcome[0], Exception), outcome[0]
    assert NEW_KEY_ID.encode() in path.read_bytes()


def test_lock_nests_in_one_thread(tmp_path):
    path = copy_shared_case(tmp_path, "comments.ini")

    with locked(path), locked(path):
        result = rewrite(path, "work", lock_timeout=0.1)

    assert result.path == path


# ---------------------------------------------------------------------------------------------
# byte-order marks and line endings


def test_bom_and_crlf_are_kept(tmp_path):
    original = (
        UTF8_BOM
        + b"[work]\r\naws_access_key_id = AKIAOLD00000000000001\r\n"
        + (b"aws_secret_access_key = OLD\r\n# end")
    )
    path = write_file(tmp_path / "credentials", original)

    found = find_profile_key("work", credentials_path=path, config_path=tmp_path / "none")
    rewrite(path, "work")

    assert found.access_key_id == "AKIAOLD00000000000001"
    assert (
        path.read_bytes()
        == UTF8_BOM
        + (
            f"[work]\r\naws_access_key_id = {NEW_KEY_ID}\r\n"
            f"aws_secret_access_key = {NEW_SECRET}\r\n# end"
        ).encode()
    )


# ---------------------------------------------------------------------------------------------
# files that cannot be parsed or edited safely

UNSAFE_FILES = {
    "duplicate section": (b"[work]\naws_access_key_id = A\n[other]\nx = 1\n[work]\nx = 2\n", 5),
    "duplicate option": (b"[work]\naws_access_key_id = A\nAWS_ACCESS_KEY_ID = B\n", 3),
    "duplicate option elsewhere": (
        b"[work]\naws_access_key_id = A\naws_secret_access_key = S\n[o]\nx = 1\nx = 2\n",
        6,
    ),
    "line without separator": (b"[work]\naws_access_key_id = A\nnot an option\n", 3),
    "option before header": (b"region = x\n[work]\n", 1),
    "option without name": (b"[work]\n= value\n", 2),
    "key value continues": (
        b"[work]\naws_access_key_id = A\n  B\naws_secret_access_key = S\n",
        3,
    ),
    "key value with spaces": (
        b"[work]\naws_access_key_id = AKIA ; old key\naws_secret_access_key = S\n",
        2,
    ),
    "indented key continues other option": (
        b"[work]\nregion = x\n  aws_secret_access_key = S\naws_access_key_id = A\n",
        3,
    ),
    "indented option continues key": (
        b"[work]\naws_access_key_id = A\naws_secret_access_key = S\n\tregion = x\n",
        4,
    ),
    "invalid utf-8": (b"[work]\naws_access_key_id = A\naws_secret_access_key = S\n# \xff\n", 4),
    "key in DEFAULT": (
        b"[DEFAULT]\naws_access_key_id = A\n[work]\naws_secret_access_key = S\n",
        2,
    ),
}


@pytest.mark.parametrize("name", sorted(UNSAFE_FILES))
def test_unsafe_file_is_rejected_unchanged(tmp_path, name):
    data, line_number = UNSAFE_FILES[name]
    path = write_file(tmp_path / "credentials", data)

    with pytest.raises(InvalidInputError) as found_error:
        find_profile_key("work", credentials_path=path, config_path=tmp_path / "none")
    with pytest.raises(InvalidInputError) as write_error:
        rewrite(path, "work", create=True)

    for raised in (found_error, write_error):
        assert raised.value.exit_code == 2
        assert f"{path}, line {line_number}:" in raised.value.message
        assert "cannot safely parse" in raised.value.message
    assert path.read_bytes() == data
    assert temporary_files(tmp_path) == []


def test_config_profile_defined_twice_is_rejected(tmp_path):
    config = write_file(
        tmp_path / "config",
        b"[profile work]\naws_access_key_id = A\naws_secret_access_key = S\n"
        b"[profile  work]\nregion = x\n",
    )

    with pytest.raises(InvalidInputError) as raised:
        find_profile_key("work", credentials_path=tmp_path / "none", config_path=config)

    assert f"{config}, line 4:" in raised.value.message


# ---------------------------------------------------------------------------------------------
# finding profiles across the two files


def test_credentials_file_wins_over_config(tmp_path):
    credentials = write_file(
        tmp_path / "credentials",
        b"[work]\naws_access_key_id = FROMCREDS\naws_secret_access_key = S1\n",
    )
    config = write_file(
        tmp_path / "config",
        b"[profile work]\naws_access_key_id = FROMCONFIG\naws_secret_access_key = S2\n",
    )

    found = find_profile_key("work", credentials_path=credentials, config_path=config)

    assert found.path == credentials
    assert found.access_key_id == "FROMCREDS"


def test_credentials_section_without_key_falls_back_to_config(tmp_path):
    credentials = write_file(tmp_path / "credentials", b"[work]\nregion = us-east-1\n")
    config = write_file(
        tmp_path / "config",
        b"[work]\naws_access_key_id = NOTAPROFILE\naws_secret_access_key = S0\n"
        b"[profile work]\naws_access_key_id = FROMCONFIG\naws_secret_access_key = S2\n",
    )

    found = find_profile_key("work", credentials_path=credentials, config_path=config)

    assert found == ProfileKey(config, "profile work", "FROMCONFIG", "S2", False)


def test_profile_without_access_key_is_not_found(tmp_path):
    credentials = write_file(tmp_path / "credentials", b"[work]\naws_secret_access_key = S\n")

    with pytest.raises(NotFoundError) as raised:
        find_profile_key("work", credentials_path=credentials, config_path=tmp_path / "config")

    assert "aws_access_key_id" in raised.value.message
    assert str(credentials) in raised.value.message


def test_default_paths_follow_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("KEYROT_TEST_FOLDER", str(tmp_path))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "$KEYROT_TEST_FOLDER/creds")
    monkeypatch.setenv("AWS_CONFIG_FILE", "~/conf")

    assert credentials_file_path() == tmp_path / "creds"
    assert config_file_path() == Path(os.environ["HOME"]) / "conf"

    monkeypatch.delenv("AWS_SHARED_CREDENTIALS_FILE")
    monkeypatch.delenv("AWS_CONFIG_FILE")
    assert credentials_file_path() == Path(os.environ["HOME"]) / ".aws" / "credentials"
    assert config_file_path() == Path(os.environ["HOME"]) / ".aws" / "config"


def test_find_uses_environment_paths(tmp_path, monkeypatch):
    path = copy_shared_case(tmp_path, "root.ini")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(path))

    found = find_profile_key("root")

    assert found.path == path


# ---------------------------------------------------------------------------------------------
# creating what is missing


def test_create_appends_missing_section(tmp_path):
    path = copy_shared_case(tmp_path, "padding.ini")
    before = path.read_bytes()

    rewrite(path, "new", create=True)

    assert (
        path.read_bytes()
        == before
        + (
            f"\n[new]\naws_access_key_id = {NEW_KEY_ID}\naws_secret_access_key = {NEW_SECRET}\n"
        ).encode()
    )


def test_create_adds_missing_option_in_same_style(tmp_path):
    path = write_file(
        tmp_path / "credentials",
        b"[work]\r\nAWS_ACCESS_KEY_ID\t=\tOLDKEY\r\nregion = x\r\n\r\n[next]\r\nregion = y",
    )

    rewrite(path, "work", create=True)

    assert (
        path.read_bytes()
        == (
            f"[work]\r\nAWS_ACCESS_KEY_ID\t=\t{NEW_KEY_ID}\r\nregion = x\r\n"
            f"AWS_SECRET_ACCESS_KEY\t=\t{NEW_SECRET}\r\n\r\n[next]\r\nregion = y"
        ).encode()
    )


def test_create_section_after_missing_final_newline(tmp_path):
    path = write_file(tmp_path / "credentials", b"[a]\r\nregion = x")

    rewrite(path, "b", create=True)

    assert (
        path.read_bytes()
        == (
            f"[a]\r\nregion = x\r\n\r\n[b]\r\naws_access_key_id = {NEW_KEY_ID}\r\n"
            f"aws_secret_access_key = {NEW_SECRET}\r\n"
        ).encode()
    )


@pytest.mark.parametrize("value", ["", "has space", "new\nline", "caf\u00e9"])
def test_invalid_new_value_is_rejected(tmp_path, value):
    path = copy_shared_case(tmp_path, "root.ini")
    before = path.read_bytes()

    with pytest.raises(InvalidInputError):
        write_profile_key(path, "root", NEW_KEY_ID, value)

    assert path.read_bytes() == before


# ---------------------------------------------------------------------------------------------
# property tests over generated files

PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
ACCESS_KEY_NAMES = ["aws_access_key_id", "AWS_ACCESS_KEY_ID", "Aws_Access_Key_Id"]
SECRET_NAMES = ["aws_secret_access_key", "AWS_SECRET_ACCESS_KEY"]
TOKEN_NAMES = ["aws_session_token", "aws_security_token", "AWS_SESSION_TOKEN"]

paddings = st.text(alphabet=" \t", max_size=3)
# A lone "\r" followed by an empty line ending in "\n" would read as one "\r\n", so files with
# old Mac endings use nothing else.
line_ending_cycles = st.one_of(
    st.just(["\r"]), st.lists(st.sampled_from(["\n", "\r\n"]), min_size=1, max_size=3)
)
plain_values = st.from_regex(r"[A-Za-z0-9/+=_.:-]{1,24}", fullmatch=True)
other_option_names = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True).filter(
    lambda name: not name.startswith("aws_")
)
section_names = st.from_regex(r"[A-Za-z0-9_.@-][A-Za-z0-9 _.@-]{0,12}", fullmatch=True).filter(
    lambda name: name != "DEFAULT"
)
comment_texts = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"), max_size=30
)


@dataclass(frozen=True)
class OptionLine:
    """One generated "name = value" line and its indented continuation lines."""

    name: str
    before_separator: str
    separator: str
    after_separator: str
    value: str
    trailing: str
    continuation: tuple[str, ...] = ()

    def render(self) -> list[str]:
        first = f"{self.name}{self.before_separator}{self.separator}{self.after_separator}"
        return [first + self.value + self.trailing, *self.continuation]


@st.composite
def option_lines(draw, names=other_option_names, values=plain_values, continued=True):
    continuation: tuple[str, ...] = ()
    if continued:
        texts = st.from_regex(r"[a-z0-9][a-z0-9 =]{0,10}", fullmatch=True)
        indented = st.builds(lambda pad, text: " " + pad + text, paddings, texts)
        continuation = tuple(draw(st.lists(indented, max_size=2)))
    return OptionLine(
        name=draw(names),
        before_separator=draw(paddings),
        separator=draw(st.sampled_from(["=", ":"])),
        after_separator=draw(paddings),
        value=draw(values),
        trailing=draw(paddings),
        continuation=continuation,
    )


def filler_lines():
    """Comments (at any indentation) and blank lines that may stand between options."""
    comment = st.builds(
        lambda pad, prefix, text: pad + prefix + text,
        paddings,
        st.sampled_from("#;"),
        comment_texts,
    )
    return st.lists(st.one_of(comment, paddings), max_size=2)


@st.composite
def section_bodies(draw, target: bool):
    """A section's lines as (kind, item) pairs; the target section contains the key to replace."""
    options = draw(st.lists(option_lines(), max_size=3, unique_by=lambda option: option.name))
    if target:
        options.append(draw(option_lines(st.sampled_from(ACCESS_KEY_NAMES), continued=False)))
        options.append(draw(option_lines(st.sampled_from(SECRET_NAMES), continued=False)))
        tokens = st.lists(option_lines(st.sampled_from(TOKEN_NAMES)), max_size=1)
        options.extend(draw(tokens))
    order = draw(st.permutations(options))
    body = []
    for option in order:
        body.extend(("filler", line) for line in draw(filler_lines()))
        body.append(("option", option))
    return body


@st.composite
def generated_files(draw):
    """A credentials file with random comments, padding, separators, line endings and sections."""
    names = draw(st.lists(section_names, min_size=1, max_size=4, unique=True))
    target = draw(st.sampled_from(names))
    sections = []
    for name in names:
        header = "[" + name + "]" + draw(st.sampled_from(["", " ", "\t", " # note"]))
        sections.append((name, header, draw(section_bodies(target=name == target))))
    return {
        "preamble": draw(filler_lines()),
        "sections": sections,
        "target": target,
        "endings": draw(line_ending_cycles),
        "final_newline": draw(st.booleans()),
        "bom": draw(st.booleans()),
    }


def render_file(model: dict, *, rewritten: bool) -> bytes:
    """The file's bytes; with rewritten, as the target section must read after the rewrite.

    Line endings cycle through model["endings"] by line position in the original file, so a
    removed line takes its own ending with it.
    """
    lines = [(line, True) for line in model["preamble"]]
    for name, header, body in model["sections"]:
        lines.append((header, True))
        for kind, item in body:
            if kind == "filler":
                lines.append((item, True))
            elif rewritten and name == model["target"]:
                lines.extend(rewritten_option(item))
            else:
                lines.extend((text, True) for text in item.render())

    endings = [model["endings"][index % len(model["endings"])] for index in range(len(lines))]
    if not model["final_newline"]:
        endings[-1] = ""
    kept = [(text, ending) for (text, keep), ending in zip(lines, endings, strict=True) if keep]
    if not model["final_newline"]:
        kept[-1] = (kept[-1][0], "")
    text = "".join(text + ending for text, ending in kept)
    return (UTF8_BOM if model["bom"] else b"") + text.encode()


def rewritten_option(option: OptionLine) -> list[tuple[str, bool]]:
    """option's lines after the rewrite, each with whether it stays in the file."""
    name = option.name.lower()
    if name in TOKEN_OPTIONS:
        return [(text, False) for text in option.render()]
    if name == "aws_access_key_id":
        option = dataclasses.replace(option, value=NEW_KEY_ID)
    if name == "aws_secret_access_key":
        option = dataclasses.replace(option, value=NEW_SECRET)
    return [(text, True) for text in option.render()]


@PROPERTY_SETTINGS
@given(model=generated_files())
def test_generated_file_changes_only_key(tmp_path, model):
    path = write_file(tmp_path / "credentials", render_file(model, rewritten=False))
    before = configparser_view(path)
    section = model["target"]

    found = find_profile_key(section, credentials_path=path, config_path=tmp_path / "none")
    rewrite(path, section)

    assert found.section == section
    assert path.read_bytes() == render_file(model, rewritten=True)
    assert configparser_view(path) == with_new_key(before, section)


@PROPERTY_SETTINGS
@given(model=generated_files(), data=st.data())
def test_generated_duplicate_section_is_rejected(tmp_path, model, data):
    name = data.draw(st.sampled_from([name for name, _, _ in model["sections"]]))
    original = render_file(model, rewritten=False) + f"\n[{name}]\nregion = x\n".encode()
    path = write_file(tmp_path / "credentials", original)

    with pytest.raises(InvalidInputError) as raised:
        rewrite(path, model["target"])

    assert f"section [{name}] appears twice" in raised.value.message
    assert path.read_bytes() == original


ini_like_text = st.text(alphabet="[]=:#; \t\r\nabAB_", max_size=80)


def configparser_reading(data: bytes):
    """What RawConfigParser reads from data opened as a file, or None if it raises."""
    parser = configparser.RawConfigParser()
    stream = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline=None)
    try:
        parser.read_file(stream)
    except configparser.Error:
        return None
    view = {name: dict(parser.items(name)) for name in parser.sections()}
    if parser.defaults():
        view["DEFAULT"] = dict(parser.defaults())
    return view


@settings(max_examples=400, deadline=None)
@given(text=st.one_of(ini_like_text, st.text(max_size=60)))
def test_parser_agrees_with_configparser(text):
    data = text.encode("utf-8", "replace")
    expected = configparser_reading(data)

    try:
        parsed = parse_ini(data)
    except IniFormatError as error:
        assert expected is None or "[DEFAULT] appears twice" in error.reason
        return

    assert parsed.to_bytes() == data
    assert merge_defaults(parsed.values()) == expected


# ---------------------------------------------------------------------------------------------
# guarding against changes made by someone else


def test_expected_key_matches_then_writes(tmp_path):
    path = copy_shared_case(tmp_path, "comments.ini")

    rewrite(path, "work", expected_access_key_id="AKIAIOSFODNN7EXAMPLE")

    assert NEW_KEY_ID.encode() in path.read_bytes()


def test_expected_key_changed_is_refused(tmp_path):
    path = copy_shared_case(tmp_path, "comments.ini")
    before = path.read_bytes()

    with pytest.raises(CredentialsFileChangedError) as raised:
        rewrite(path, "work", expected_access_key_id="AKIAI44QH8DHBEXAMPLE")

    assert raised.value.exit_code == 5
    assert "AKIAIOSFODNN7EXAMPLE" in raised.value.message
    assert str(path) in raised.value.message
    assert path.read_bytes() == before


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_owner_and_group_are_kept(tmp_path):
    path = copy_shared_case(tmp_path, "comments.ini")
    os.chown(path, 12345, 23456)

    rewrite(path, "work")

    status = path.stat()
    assert status.st_uid == 12345
    assert status.st_gid == 23456


# ---------------------------------------------------------------------------------------------
# more failure paths of the write


@pytest.fixture
def full_filesystem(tmp_path):
    """A 64 KiB tmpfs mounted in tmp_path (needs root), for writes that really run out of space."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def fill_filesystem(folder: Path) -> None:
    descriptor = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(descriptor, b"\0" * 4096)
    except OSError as error:
        assert error.errno == errno.ENOSPC
    finally:
        os.close(descriptor)


def test_real_full_disk_leaves_file_unchanged(full_filesystem):
    path = copy_shared_case(full_filesystem, "two-profiles.ini")
    (full_filesystem / "two-profiles.ini.lock").touch()
    before = path.read_bytes()
    fill_filesystem(full_filesystem)

    with pytest.raises(CredentialsFileWriteError) as raised:
        rewrite(path, "default")

    assert path.read_bytes() == before
    assert temporary_files(full_filesystem) == []
    assert "ENOSPC" in raised.value.message
    assert raised.value.exit_code == 5


def test_unopenable_lock_file_is_write_error(tmp_path, monkeypatch):
    path = copy_shared_case(tmp_path, "comments.ini")
    before = path.read_bytes()
    real_open = os.open

    def read_only_open(file, flags, *arguments):
        if str(file).endswith(".lock"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(file))
        return real_open(file, flags, *arguments)

    monkeypatch.setattr(os, "open", read_only_open)
    with pytest.raises(CredentialsFileWriteError) as raised:
        rewrite(path, "work")

    assert raised.value.exit_code == 5
    assert f"could not lock {path}" in raised.value.message
    assert path.read_bytes() == before


def test_interrupt_during_write_removes_temporary(tmp_path, monkeypatch):
    path = copy_shared_case(tmp_path, "comments.ini")
    before = path.read_bytes()
    real_fsync = os.fsync

    def interrupted_fsync(descriptor):
        if os.readlink(f"/proc/self/fd/{descriptor}").endswith(".tmp"):
            raise KeyboardInterrupt
        return real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", interrupted_fsync)
    with pytest.raises(KeyboardInterrupt):
        rewrite(path, "work")

    assert path.read_bytes() == before
    assert temporary_files(tmp_path) == []


def test_leftover_temporary_file_is_logged(tmp_path, monkeypatch, caplog):
    path = copy_shared_case(tmp_path, "comments.ini")
    fail_on_temporary_file(monkeypatch, "fsync", errno.EIO)
    fail_on_temporary_file(monkeypatch, "unlink", errno.EBUSY)

    with pytest.raises(CredentialsFileWriteError):
        rewrite(path, "work")

    leftovers = temporary_files(tmp_path)
    assert len(leftovers) == 1
    assert leftovers[0] in caplog.text
    assert "delete it by hand" in caplog.text
    assert NEW_SECRET not in caplog.text


def test_folder_fsync_failure_still_writes(tmp_path, monkeypatch, caplog):
    path = copy_shared_case(tmp_path, "comments.ini")
    real_fsync = os.fsync

    def failing_folder_fsync(descriptor):
        if os.path.isdir(os.readlink(f"/proc/self/fd/{descriptor}")):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", failing_folder_fsync)
    result = rewrite(path, "work")

    assert result.path == path
    assert NEW_KEY_ID.encode() in path.read_bytes()
    assert f"could not flush the rename in {tmp_path}" in caplog.text


def test_config_file_gets_new_profile_section(tmp_path):
    path = write_file(tmp_path / "config", b"[default]\nregion = us-east-1\n")

    rewrite(path, "profile new", create=True)
    found = find_profile_key("new", credentials_path=tmp_path / "none", config_path=path)

    assert found.section == "profile new"
    assert found.access_key_id == NEW_KEY_ID
    assert (
        path.read_bytes()
        == (
            "[default]\nregion = us-east-1\n\n[profile new]\n"
            f"aws_access_key_id = {NEW_KEY_ID}\naws_secret_access_key = {NEW_SECRET}\n"
        ).encode()
    )


def test_default_section_is_never_written(tmp_path):
    path = write_file(tmp_path / "credentials", b"[DEFAULT]\nregion = x\n")

    with pytest.raises(InvalidInputError) as raised:
        rewrite(path, "DEFAULT", create=True)

    assert "every profile" in raised.value.message
    assert path.read_bytes() == b"[DEFAULT]\nregion = x\n"


@PROPERTY_SETTINGS
@given(text=ini_like_text)
def test_arbitrary_text_is_rewritten_or_left_alone(tmp_path, text):
    data = text.encode()
    path = write_file(tmp_path / "credentials", data)
    before = configparser_reading(data)

    try:
        rewrite(path, "a", create=True)
    except KeyrotError as error:
        assert path.read_bytes() == data
        assert error.exit_code == 2
        return

    assert before is not None
    before.setdefault("a", dict(before.get("DEFAULT", {})))
    before.setdefault("DEFAULT", {})
    after = configparser_reading(path.read_bytes())
    assert after is not None
    after.setdefault("DEFAULT", {})
    assert after == with_new_key(before, "a")


def test_unclosed_section_header_named(tmp_path: Path) -> None:
    content = b"[alice\naws_access_key_id = AKIAOLDKEY0000000001\n"
    path = write_file(tmp_path / "credentials", content)

    with pytest.raises(InvalidInputError) as raised:
        find_profile_key("alice", credentials_path=path, config_path=tmp_path / "config")

    assert "line 1: section header '[alice' has no closing ]" in raised.value.message
