"""keyrot rotate when a step fails: slow key propagation, a full disk, rejected calls.

Faults are injected between keyrot and the local IAM endpoint by the proxy in http_proxy.py,
and at the operating-system level for the disk.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import threading

import pytest
from conftest import create_user_with_keys, run, sign_as
from rotate_support import (
    COMMENTS_INI,
    TWO_PROFILES_INI,
    install,
    journal_files,
    key_statuses,
    profile_values,
    use_profile_files,
)


@pytest.fixture
def bob(iam):
    return create_user_with_keys(iam, "Bob", 1)[0]


@pytest.fixture
def credentials(aws_environment):
    return aws_environment / "credentials"


class FullDisk:
    """While full is set, every write to a file in one folder fails with ENOSPC."""

    def __init__(self, folder):
        self.folder = f"{folder}/"
        self.full = True
        self._real_write = os.write

    def write(self, descriptor, data):
        try:
            target = os.readlink(f"/proc/self/fd/{descriptor}")
        except OSError:
            target = ""
        if self.full and target.startswith(self.folder):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self._real_write(descriptor, data)


@pytest.fixture
def full_disk(monkeypatch, aws_environment):
    disk = FullDisk(aws_environment)
    monkeypatch.setattr(os, "write", disk.write)
    return disk


def signed_by_new_key(old_key_id):
    return lambda request: request.access_key_id not in (old_key_id, None) and (
        not request.access_key_id.startswith("AKIAFAKE")
    )


def test_verify_waits_for_propagation(iam, bob, credentials, proxy):
    install(credentials, COMMENTS_INI, bob)
    rejected = proxy.add_rule(
        "GetCallerIdentity",
        times=3,
        error=(403, "InvalidClientTokenId", "The security token included in the request is "
               "invalid"),
        match=signed_by_new_key(bob.access_key_id),
    )

    result = run("rotate", "--profile", "work", "--verify-timeout", "30")

    assert result.exit_code == 0, result.stderr
    assert rejected.hits == 3
    assert "verified after 4 attempts" in result.stderr
    new_id, _ = profile_values(credentials, "work")
    assert key_statuses(iam, "Bob") == {bob.access_key_id: "Inactive", new_id: "Active"}


def test_verify_never_succeeds_rolls_back(iam, bob, credentials, proxy, state_dir):
    before = install(credentials, COMMENTS_INI, bob)
    proxy.add_rule(
        "GetCallerIdentity",
        times=None,
        error=(403, "InvalidClientTokenId", "The security token is invalid"),
        match=signed_by_new_key(bob.access_key_id),
    )

    result = run("rotate", "--profile", "work", "--verify-timeout", "1")

    assert result.exit_code == 5
    assert "IAM did not accept the new key " in result.stderr
    assert "within --verify-timeout 1 seconds" in result.stderr
    assert "last answer: " in result.stderr
    assert "InvalidClientTokenId" in result.stderr
    assert "check --profile" not in result.stderr
    assert "was deleted again" in result.stderr
    assert result.stderr.rstrip().endswith("; try a longer --verify-timeout")
    assert credentials.read_bytes() == before
    assert key_statuses(iam, "Bob") == {bob.access_key_id: "Active"}
    assert journal_files(state_dir) == []


def test_verify_failure_keeps_spare_deleted(iam, bob, credentials, proxy,
                                                                 state_dir):
    before = install(credentials, COMMENTS_INI, bob)
    spare = iam.create_access_key(UserName="Bob")["AccessKey"]["AccessKeyId"]
    iam.update_access_key(UserName="Bob", AccessKeyId=spare, Status="Inactive")
    proxy.add_rule(
        "GetCallerIdentity",
        times=None,
        error=(403, "InvalidClientTokenId", "The security token is invalid"),
        match=signed_by_new_key(bob.access_key_id),
    )

    result = run("rotate", "--profile", "work", "--delete-inactive-key", "--verify-timeout", "0")

    assert result.exit_code == 5
    [line] = [line for line in result.stderr.splitlines() if line.startswith("keyrot: error:")]
    assert line.startswith("keyrot: error: IAM did not accept the new key ")
    assert " within --verify-timeout 0 seconds (1 attempts of STS GetCallerIdentity; last " \
        "answer: " in line
    assert "check --profile" not in line
    assert "credentials were rejected" not in line
    assert f"was deleted again, and the old key {bob.access_key_id} and [work] in " \
        f"{credentials} are unchanged; the inactive key {spare}, deleted to make room, stays " \
        "deleted; try a longer --verify-timeout" in line
    assert credentials.read_bytes() == before
    assert key_statuses(iam, "Bob") == {bob.access_key_id: "Active"}
    assert journal_files(state_dir) == []


def test_f06_full_disk_rolls_back(iam, bob, credentials, monkeypatch, full_disk, state_dir):
    use_profile_files(monkeypatch)
    before = install(credentials, TWO_PROFILES_INI, bob)

    result = run("rotate")

    assert result.exit_code == 5
    assert credentials.read_bytes() == before
    assert key_statuses(iam, "Bob") == {bob.access_key_id: "Active"}
    assert "No space left on device" in result.stderr
    assert "are unchanged" in result.stderr
    assert journal_files(state_dir) == []


def test_f06_failed_rollback_names_orphan(iam, bob, credentials, monkeypatch, full_disk, proxy,
                                          state_dir):
    use_profile_files(monkeypatch)
    before = install(credentials, TWO_PROFILES_INI, bob)
    proxy.fail("DeleteAccessKey", 500, "ServiceFailure", "Internal failure", times=None)

    result = run("rotate", "--output", "json")

    assert result.exit_code == 6
    assert credentials.read_bytes() == before
    orphan = next(key for key in key_statuses(iam, "Bob") if key != bob.access_key_id)
    assert f"orphan key: {orphan}" in result.stderr
    assert f"aws iam delete-access-key --profile default --user-name Bob --access-key-id " \
           f"{orphan}" in result.stderr
    assert result.stdout == ""
    journal = json.loads(journal_files(state_dir)[0].read_text())
    assert journal["new_access_key_id"] == orphan
    assert journal["new_secret_access_key"] not in result.stderr


def test_f06_next_run_rolls_back_orphan(iam, bob, credentials, monkeypatch, full_disk, proxy,
                                        state_dir):
    use_profile_files(monkeypatch)
    install(credentials, TWO_PROFILES_INI, bob)
    failing = proxy.fail("DeleteAccessKey", 500, "ServiceFailure", "Internal failure", times=None)
    assert run("rotate").exit_code == 6
    failing.times = 0
    full_disk.full = False

    result = run("rotate")

    assert result.exit_code == 0, result.stderr
    assert "rolled back an interrupted rotation" in result.stderr
    new_id, _ = profile_values(credentials, "default")
    assert key_statuses(iam, "Bob") == {bob.access_key_id: "Inactive", new_id: "Active"}
    assert journal_files(state_dir) == []


def test_retire_failure_exits_6_with_command(iam, bob, credentials, proxy, state_dir):
    install(credentials, COMMENTS_INI, bob)
    proxy.fail("UpdateAccessKey", 403, "AccessDenied", "not allowed", times=None)

    result = run("rotate", "--profile", "work")

    assert result.exit_code == 6
    new_id, _ = profile_values(credentials, "work")
    assert key_statuses(iam, "Bob") == {bob.access_key_id: "Active", new_id: "Active"}
    assert f"to finish: keyrot deactivate --profile work --user Bob {bob.access_key_id}" \
        in result.stderr
    assert f"* {new_id}" in result.stdout
    assert len(journal_files(state_dir)) == 1


def test_retire_failure_then_rerun_finishes(iam, bob, credentials, proxy, state_dir):
    install(credentials, COMMENTS_INI, bob)
    failing = proxy.fail("UpdateAccessKey", 403, "AccessDenied", "not allowed", times=None)
    assert run("rotate", "--profile", "work").exit_code == 6
    failing.times = 0

    result = run("rotate", "--profile", "work")

    assert result.exit_code == 0, result.stderr
    assert "finished an interrupted rotation" in result.stderr
    new_id, _ = profile_values(credentials, "work")
    assert key_statuses(iam, "Bob") == {bob.access_key_id: "Inactive", new_id: "Active"}
    assert journal_files(state_dir) == []


def test_delete_retire_failure_names_aws_command(iam, bob, proxy):
    proxy.fail("DeleteAccessKey", 403, "AccessDenied", "not allowed", times=None)

    result = run("rotate", "--user", "Bob", "--output", "json", "--delete")

    assert result.exit_code == 6
    assert f"aws iam delete-access-key --user-name Bob --access-key-id {bob.access_key_id}" \
        in result.stderr
    document = json.loads(result.stdout)
    assert document["OldAccessKey"]["Result"] == "left active"
    assert document["NewAccessKey"]["SecretAccessKey"]


def test_create_limit_exceeded_exits_5(iam, bob, proxy, state_dir, tmp_path):
    proxy.fail("CreateAccessKey", 409, "LimitExceeded", "Cannot exceed quota", times=1)

    result = run("rotate", "--user", "Bob", "--env-file", str(tmp_path / "bob.env"))

    assert result.exit_code == 5
    assert "LimitExceeded" in result.stderr
    assert key_statuses(iam, "Bob") == {bob.access_key_id: "Active"}
    assert journal_files(state_dir) == []
    assert not (tmp_path / "bob.env").exists()


def test_journal_is_private(iam, bob, credentials, proxy, state_dir):
    install(credentials, COMMENTS_INI, bob)
    proxy.fail("UpdateAccessKey", 403, "AccessDenied", "not allowed", times=None)

    assert run("rotate", "--profile", "work").exit_code == 6

    journal = journal_files(state_dir)[0]
    assert stat.S_IMODE(journal.stat().st_mode) == 0o600
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700


def test_env_file_rotation_finished_by_rerun(iam, bob, proxy, state_dir, tmp_path):
    env_file = tmp_path / "bob.env"
    failing = proxy.fail("UpdateAccessKey", 403, "AccessDenied", "not allowed", times=None)
    assert run("rotate", "--user", "Bob", "--env-file", str(env_file)).exit_code == 6
    failing.times = 0

    result = run("rotate", "--user", "Bob", "--env-file", str(env_file))

    assert result.exit_code == 0, result.stderr
    assert "finished an interrupted rotation of Bob" in result.stderr
    new_id = env_file.read_text().splitlines()[0].removeprefix("AWS_ACCESS_KEY_ID=")
    assert key_statuses(iam, "Bob") == {bob.access_key_id: "Inactive", new_id: "Active"}


def test_output_rotation_finished_by_rerun(iam, bob, proxy, state_dir):
    failing = proxy.fail("UpdateAccessKey", 403, "AccessDenied", "not allowed", times=None)
    first = run("rotate", "--user", "Bob", "--output", "json")
    assert first.exit_code == 6
    created = json.loads(first.stdout)["NewAccessKey"]
    failing.times = 0

    result = run("rotate", "--user", "Bob", "--output", "json")

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["Recovery"] == "finished"
    assert document["NewAccessKey"]["AccessKeyId"] == created["AccessKeyId"]
    assert document["NewAccessKey"]["SecretAccessKey"] == created["SecretAccessKey"]
    assert key_statuses(iam, "Bob") == {
        bob.access_key_id: "Inactive", created["AccessKeyId"]: "Active"
    }
    assert journal_files(state_dir) == []


def test_key_changed_during_rotation_rolls_back(iam, bob, credentials, proxy):
    install(credentials, COMMENTS_INI, bob)
    held = proxy.add_rule("GetCallerIdentity", hold=threading.Event(),
                          match=signed_by_new_key(bob.access_key_id))
    edited = COMMENTS_INI.replace("AKIAIOSFODNN7EXAMPLE", "AKIAEDITEDBYHAND0000")

    def edit_while_held():
        held.arrived.wait(60)
        credentials.write_text(edited)
        held.hold.set()

    editor = threading.Thread(target=edit_while_held)
    editor.start()
    result = run("rotate", "--profile", "work")
    editor.join()

    assert result.exit_code == 5
    assert "AKIAEDITEDBYHAND0000" in result.stderr
    assert "was deleted again" in result.stderr
    assert credentials.read_text() == edited
    assert key_statuses(iam, "Bob") == {bob.access_key_id: "Active"}


def test_env_key_retire_failure_command_forces(iam, bob, proxy, monkeypatch):
    sign_as(monkeypatch, bob)
    proxy.fail("UpdateAccessKey", 403, "AccessDenied", "not allowed", times=None)

    result = run("rotate", "--output", "json")

    assert result.exit_code == 6
    assert f"to finish: keyrot deactivate --user Bob --force {bob.access_key_id}" in result.stderr
    new_key = json.loads(result.stdout)["NewAccessKey"]
    assert key_statuses(iam, "Bob") == {bob.access_key_id: "Active",
                                        new_key["AccessKeyId"]: "Active"}
