"""keyrot rotate as a process: terminal prompts, Ctrl-C, two runs at once, and journal failures."""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import threading

import pytest
from conftest import FAKE_ACCESS_KEY_ID, create_user_with_keys, run
from rotate_support import (
    COMMENTS_INI,
    install,
    journal_files,
    key_statuses,
    profile_values,
)

WAIT_SECONDS = 60
MFA_CONFIG = "[profile work]\nmfa_serial = arn:aws:iam::123456789012:mfa/Bob\n"


@pytest.fixture
def bob(iam, aws_environment):
    key = create_user_with_keys(iam, "Bob", 1)[0]
    install(aws_environment / "credentials", COMMENTS_INI, key)
    return key


def start_rotation(*arguments, stdin=subprocess.DEVNULL):
    return subprocess.Popen(
        [sys.executable, "-m", "keyrot", "rotate", *arguments],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_on_terminal(answer, *arguments):
    pty = pytest.importorskip("pty")
    leader, follower = pty.openpty()
    os.write(leader, answer.encode())
    try:
        child = start_rotation(*arguments, stdin=follower)
        stdout, stderr = child.communicate(timeout=WAIT_SECONDS)
    finally:
        os.close(follower)
        os.close(leader)
    return child.returncode, stdout, stderr


def test_mfa_code_asked_on_terminal(iam, bob, aws_environment, proxy):
    (aws_environment / "config").write_text(MFA_CONFIG)

    exit_code, _, stderr = run_on_terminal("654321\n", "--profile", "work")

    assert exit_code == 0, stderr
    assert "MFA code for arn:aws:iam::123456789012:mfa/Bob" in stderr
    tokens = [r for r in proxy.requests if r.action == "GetSessionToken"]
    assert [r.params["TokenCode"] for r in tokens] == ["654321"]


@pytest.mark.parametrize(("answer", "exit_code"), [("y\n", 0), ("n\n", 5)])
def test_spare_key_prompt_on_terminal(iam, bob, answer, exit_code):
    spare = iam.create_access_key(UserName="Bob")["AccessKey"]["AccessKeyId"]
    iam.update_access_key(UserName="Bob", AccessKeyId=spare, Status="Inactive")

    returncode, _, stderr = run_on_terminal(answer, "--profile", "work")

    assert returncode == exit_code, stderr
    assert f"Delete the inactive key {spare} to make room?" in stderr
    assert f"\n  {bob.access_key_id}  Active    created 20" in stderr
    assert f"\n  {spare}  Inactive  created 20" in stderr
    assert f"keyrot: {spare}" not in stderr
    assert (spare in key_statuses(iam, "Bob")) is (exit_code != 0)


def test_second_run_waits_for_first(iam, bob, aws_environment, proxy):
    held = proxy.add_rule("UpdateAccessKey", hold=threading.Event())
    first = start_rotation("--profile", "work")
    try:
        assert held.arrived.wait(WAIT_SECONDS)

        second = run("rotate", "--profile", "work")

        assert second.exit_code == 5
        assert "another keyrot rotate of the same profile or user is running" in second.stderr
    finally:
        held.hold.set()
    _, stderr = first.communicate(timeout=WAIT_SECONDS)
    assert first.returncode == 0, stderr
    new_id, _ = profile_values(aws_environment / "credentials", "work")
    assert key_statuses(iam, "Bob") == {bob.access_key_id: "Inactive", new_id: "Active"}


def test_ctrl_c_during_verify_keeps_journal(iam, bob, aws_environment, proxy, state_dir):
    held = proxy.add_rule("GetCallerIdentity", hold=threading.Event(),
                          match=lambda request: request.access_key_id != bob.access_key_id)
    child = start_rotation("--profile", "work")
    try:
        assert held.arrived.wait(WAIT_SECONDS)
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=WAIT_SECONDS)
    finally:
        held.hold.set()

    assert child.returncode == 130
    assert "interrupted after creating" in stderr
    assert "; run keyrot rotate --profile work to finish or roll back this rotation" in stderr
    assert "Traceback" not in stderr
    assert len(journal_files(state_dir)) == 1

    result = run("rotate", "--profile", "work")

    assert result.exit_code == 0, result.stderr
    assert "rolled back an interrupted rotation" in result.stderr
    assert len(key_statuses(iam, "Bob")) == 2
    assert journal_files(state_dir) == []


def test_unwritable_state_dir_exits_5_before_create(iam, bob, tmp_path, monkeypatch, proxy):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("KEYROT_STATE_DIR", str(blocker / "state"))

    result = run("rotate", "--profile", "work")

    assert result.exit_code == 5
    assert "KEYROT_STATE_DIR" in result.stderr
    assert "CreateAccessKey" not in proxy.actions()
    assert key_statuses(iam, "Bob") == {bob.access_key_id: "Active"}


def test_failed_journal_write_deletes_new_key(iam, bob, aws_environment, monkeypatch,
                                              state_dir):
    real_write = os.write

    def write(descriptor, data):
        if b'"stage": "created"' in bytes(data):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_write(descriptor, data)

    monkeypatch.setattr(os, "write", write)
    before = (aws_environment / "credentials").read_bytes()

    result = run("rotate", "--profile", "work")

    assert result.exit_code == 5
    assert "cannot write the recovery journal" in result.stderr
    assert "was deleted again" in result.stderr
    assert key_statuses(iam, "Bob") == {bob.access_key_id: "Active"}
    assert (aws_environment / "credentials").read_bytes() == before
    assert journal_files(state_dir) == []


def test_secrets_only_written_to_private_files(iam, bob, aws_environment, monkeypatch, tmp_path,
                                               state_dir):
    real_write = os.write
    modes = []

    def write(descriptor, data):
        if b"aws_secret_access_key" in bytes(data) or b"AWS_SECRET_ACCESS_KEY" in bytes(data) \
                or b"new_secret_access_key" in bytes(data):
            modes.append(stat.S_IMODE(os.fstat(descriptor).st_mode))
        return real_write(descriptor, data)

    monkeypatch.setattr(os, "write", write)
    (aws_environment / "credentials").chmod(0o644)

    profile = run("rotate", "--profile", "work")
    env_file = run("rotate", "--user", "Bob", "--env-file", str(tmp_path / "bob.env"),
                   "--delete-inactive-key")

    assert profile.exit_code == 0, profile.stderr
    assert env_file.exit_code == 0, env_file.stderr
    assert len(modes) >= 5
    assert set(modes) == {0o600}


def test_json_output_on_pipe_has_secret(iam, bob):
    child = start_rotation("--user", "Bob", "--output", "json")
    stdout, stderr = child.communicate(timeout=WAIT_SECONDS)

    assert child.returncode == 0, stderr
    document = json.loads(stdout)
    assert document["NewAccessKey"]["SecretAccessKey"] not in stderr



def interrupt_during_verify(proxy, bob, *arguments):
    """Start a rotation and press Ctrl-C while the new key is verifying; return its stderr."""
    callers = (bob.access_key_id, FAKE_ACCESS_KEY_ID)
    held = proxy.add_rule("GetCallerIdentity", hold=threading.Event(),
                          match=lambda request: request.access_key_id not in callers)
    child = start_rotation(*arguments)
    try:
        assert held.arrived.wait(WAIT_SECONDS)
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=WAIT_SECONDS)
    finally:
        held.hold.set()
    assert child.returncode == 130, stderr
    return stderr


@pytest.mark.parametrize("kind", ["env-file", "profile"])
def test_ctrl_c_into_new_destination_rolls_back(iam, bob, aws_environment, tmp_path, proxy,
                                                state_dir, kind):
    credentials = aws_environment / "credentials"
    if kind == "env-file":
        env_file = tmp_path / "bob.env"
        options = ["--env-file", str(env_file)]
        described = f"env file {env_file}"
    else:
        options = ["--save-profile", "hank"]
        described = f"[hank] in {credentials}"
    stderr = interrupt_during_verify(proxy, bob, "--user", "Bob", *options)
    [interrupted] = [key for key in key_statuses(iam, "Bob") if key != bob.access_key_id]
    rerun = " ".join(["keyrot rotate --user Bob", *options[:1],
                      *([options[1]] if kind == "env-file" else
                        ["hank", "--credentials-file", str(credentials)])])
    assert f"; run {rerun} to finish or roll back this rotation" in stderr

    preview = run("rotate", *rerun.split()[2:], "--dry-run")

    assert preview.exit_code == 0, preview.stderr
    assert f"a real run rolls it back first by deleting the new key {interrupted}, because " \
        f"{described} does not contain it, so nothing can be using it, and then rotates as " \
        "planned below" in preview.stderr
    assert key_statuses(iam, "Bob") == {bob.access_key_id: "Active", interrupted: "Active"}

    result = run("rotate", *rerun.split()[2:])

    assert result.exit_code == 0, result.stderr
    assert f"rolled back an interrupted rotation of Bob: deleted the new key {interrupted}, " \
        f"because {described} does not contain it" in result.stderr
    if kind == "env-file":
        saved = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        new_id = saved["AWS_ACCESS_KEY_ID"]
    else:
        new_id, _ = profile_values(credentials, "hank")
    assert new_id not in (bob.access_key_id, interrupted)
    assert key_statuses(iam, "Bob") == {bob.access_key_id: "Inactive", new_id: "Active"}
    assert journal_files(state_dir) == []


def test_ctrl_c_rerun_command_keeps_connection_options(iam, bob, proxy, state_dir):
    connection = ["--profile", "work", "--region", "us-east-1", "--endpoint-url", proxy.url]
    stderr = interrupt_during_verify(proxy, bob, *connection)

    rerun = f"keyrot rotate {' '.join(connection)}"
    assert f"; run {rerun} to finish or roll back this rotation" in stderr

    result = run(*rerun.split()[1:])

    assert result.exit_code == 0, result.stderr
    assert "rolled back an interrupted rotation of Bob" in result.stderr
    assert journal_files(state_dir) == []
