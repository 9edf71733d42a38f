"""keyrot rotate killed with SIGKILL at each request, and the next run's recovery.

Each test runs `python -m keyrot rotate` as a child process, lets the proxy hold one request,
kills the child while the request is held, then lets the request go on to moto, as if the
request had left the machine just before the kill. Afterwards the profile must still hold a key
that works with moto's auth checking on, and the next rotation must finish or roll back the job.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest
from conftest import create_user_with_keys, grant_admin, run
from rotate_support import (
    COMMENTS_INI,
    iam_as,
    install,
    journal_files,
    key_statuses,
    profile_values,
    signs_as,
)

BOB_ARN = "arn:aws:iam::123456789012:user/Bob"
WAIT_SECONDS = 60


@pytest.fixture
def bob(iam, moto_server, aws_environment):
    key = create_user_with_keys(iam, "Bob", 1)[0]
    grant_admin(iam, "Bob")
    install(aws_environment / "credentials", COMMENTS_INI, key)
    moto_server.auth_checking(enabled=True)
    return key


def file_key_works(credentials, endpoint):
    key_id, secret = profile_values(credentials, "work")
    return signs_as(endpoint, key_id, secret) == BOB_ARN


def bob_keys(credentials, endpoint):
    return key_statuses(iam_as(endpoint, *profile_values(credentials, "work")), "Bob")


def kill_while_held(proxy, action, match=None):
    """Run a rotation, kill it while action is held at the proxy, then release the request."""
    held = proxy.add_rule(action, hold=threading.Event(), match=match)
    child = subprocess.Popen(
        [sys.executable, "-m", "keyrot", "rotate", "--profile", "work"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert held.arrived.wait(WAIT_SECONDS), f"{action} never reached the proxy"
        child.kill()
        child.wait(WAIT_SECONDS)
    finally:
        held.hold.set()
    assert held.answered.wait(WAIT_SECONDS)
    assert child.returncode == -9


@pytest.mark.parametrize("action", ["GetCallerIdentity", "ListAccessKeys"])
def test_kill_before_create_leaves_nothing(bob, aws_environment, proxy, moto_server, action,
                                           state_dir):
    credentials = aws_environment / "credentials"
    kill_while_held(proxy, action)

    assert file_key_works(credentials, moto_server.url)
    assert bob_keys(credentials, moto_server.url) == {bob.access_key_id: "Active"}
    result = run("rotate", "--profile", "work")
    assert result.exit_code == 0, result.stderr
    assert "interrupted" not in result.stderr
    assert file_key_works(credentials, moto_server.url)
    assert signs_as(moto_server.url, bob.access_key_id, bob.secret_access_key) is None


def test_kill_during_create_reports_unknown_key(bob, aws_environment, proxy, moto_server,
                                               state_dir):
    credentials = aws_environment / "credentials"
    kill_while_held(proxy, "CreateAccessKey")

    assert file_key_works(credentials, moto_server.url)
    assert len(journal_files(state_dir)) == 1
    keys = bob_keys(credentials, moto_server.url)
    orphan = next(key for key in keys if key != bob.access_key_id)

    result = run("rotate", "--profile", "work")

    assert result.exit_code == 5
    assert "interrupted while IAM created a key" in result.stderr
    assert f"unknown key: {orphan}" in result.stderr
    assert f"aws iam delete-access-key --profile work --user-name Bob --access-key-id {orphan}" \
        in result.stderr
    assert bob_keys(credentials, moto_server.url) == keys
    assert file_key_works(credentials, moto_server.url)

    iam_as(moto_server.url, *profile_values(credentials, "work")).delete_access_key(
        UserName="Bob", AccessKeyId=orphan)
    again = run("rotate", "--profile", "work")
    assert again.exit_code == 0, again.stderr
    assert file_key_works(credentials, moto_server.url)


def test_kill_during_verify_rolls_back(bob, aws_environment, proxy, moto_server, state_dir):
    credentials = aws_environment / "credentials"
    kill_while_held(proxy, "GetCallerIdentity",
                    match=lambda request: request.access_key_id != bob.access_key_id)

    assert file_key_works(credentials, moto_server.url)
    journal = json.loads(journal_files(state_dir)[0].read_text())
    assert journal["stage"] == "created"
    new_id = journal["new_access_key_id"]
    assert bob_keys(credentials, moto_server.url) == {
        bob.access_key_id: "Active", new_id: "Active"
    }

    result = run("rotate", "--profile", "work")

    assert result.exit_code == 0, result.stderr
    assert f"rolled back an interrupted rotation of Bob: deleted the new key {new_id}" \
        in result.stderr
    keys = bob_keys(credentials, moto_server.url)
    assert new_id not in keys
    assert keys[bob.access_key_id] == "Inactive"
    assert file_key_works(credentials, moto_server.url)
    assert journal_files(state_dir) == []


def test_kill_during_retire_finishes(bob, aws_environment, proxy, moto_server, state_dir):
    credentials = aws_environment / "credentials"
    kill_while_held(proxy, "UpdateAccessKey")

    assert file_key_works(credentials, moto_server.url)
    new_id, _ = profile_values(credentials, "work")
    assert new_id != bob.access_key_id
    assert len(journal_files(state_dir)) == 1

    result = run("rotate", "--profile", "work")

    assert result.exit_code == 0, result.stderr
    assert "finished an interrupted rotation" in result.stderr
    assert bob_keys(credentials, moto_server.url) == {
        bob.access_key_id: "Inactive", new_id: "Active"
    }
    assert signs_as(moto_server.url, bob.access_key_id, bob.secret_access_key) is None
    assert journal_files(state_dir) == []
