"""--mfa-code and the MFA session every command signs with when the profile has an mfa_serial.

moto accepts any 6-digit code and does not enforce MFA conditions, so these tests check the
requests the proxy records: one GetSessionToken signed with the profile's long-term key, then
every other request signed with the session's key. moto's GetSessionToken always returns the key ID
AKIAIOSFODNN7EXAMPLE, so the proxy rewrites it to an ASIA key ID as AWS issues for a session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import create_user_with_keys, run
from fleet_support import OTHER_ACCOUNT, ROLE_NAME, account_iam

SERIAL = "arn:aws:iam::123456789012:mfa/Bob"
MOTO_SESSION_KEY_ID = b"AKIAIOSFODNN7EXAMPLE"
MOTO_SESSION_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
MOTO_SESSION_TOKEN_START = "AQoEXAMPLEH4aoAH0gNCAPyJxz4BlCFFxWNE1OPTgk5TthT"
SESSION_KEY_ID = "ASIAMFASESSIONTEST00"
CODE = "123456"
WAIT_SECONDS = 60


@pytest.fixture
def bob(iam, aws_environment):
    """Bob's two keys; the first is profile `work`, whose config names an MFA device."""
    keys = create_user_with_keys(iam, "Bob", 2)
    (aws_environment / "credentials").write_text(
        f"[work]\naws_access_key_id = {keys[0].access_key_id}\n"
        f"aws_secret_access_key = {keys[0].secret_access_key}\n"
    )
    (aws_environment / "config").write_text(
        f"[default]\nregion = us-east-1\n\n[profile work]\nmfa_serial = {SERIAL}\n"
    )
    return keys


@pytest.fixture
def session_proxy(proxy):
    """The proxy, rewriting the session key ID in GetSessionToken responses to an ASIA one."""
    proxy.add_rule(
        "GetSessionToken", times=None,
        rewrite=lambda body: body.replace(MOTO_SESSION_KEY_ID, SESSION_KEY_ID.encode()),
    )
    return proxy


def assert_signed_with_session(proxy, long_term_key_id):
    tokens = [request for request in proxy.requests if request.action == "GetSessionToken"]
    assert len(tokens) == 1
    assert tokens[0].params["SerialNumber"] == SERIAL
    assert tokens[0].params["TokenCode"] == CODE
    assert tokens[0].access_key_id == long_term_key_id
    assert proxy.requests[0].action == "GetSessionToken"

    later = proxy.requests[1:]
    assert later
    assert {request.access_key_id for request in later} == {SESSION_KEY_ID}


def key_statuses(iam):
    keys = iam.list_access_keys(UserName="Bob")["AccessKeyMetadata"]
    return {key["AccessKeyId"]: key["Status"] for key in keys}


def test_list_signs_with_session(bob, session_proxy):
    result = run("list", "--profile", "work", "--user", "Bob", "--mfa-code", CODE,
                 "--output", "json")

    assert result.exit_code == 0, result.stderr
    listed = [key["AccessKeyId"] for key in json.loads(result.stdout)["AccessKeys"]]
    assert sorted(listed) == sorted(key.access_key_id for key in bob)
    assert_signed_with_session(session_proxy, bob[0].access_key_id)
    assert "ListAccessKeys" in session_proxy.actions()


def test_verbose_logs_no_session_secret(bob, session_proxy):
    result = run("list", "--profile", "work", "--user", "Bob", "--mfa-code", CODE, "--verbose")

    assert result.exit_code == 0, result.stderr
    assert "STS GetSessionToken: HTTP 200" in result.stderr
    assert MOTO_SESSION_SECRET not in result.stderr
    assert MOTO_SESSION_SECRET not in result.stdout
    assert MOTO_SESSION_TOKEN_START not in result.stderr


def test_deactivate_signs_with_session(iam, bob, session_proxy):
    result = run("deactivate", "--profile", "work", "--user", "Bob", "--mfa-code", CODE,
                 bob[1].access_key_id)

    assert result.exit_code == 0, result.stderr
    assert key_statuses(iam) == {bob[0].access_key_id: "Active", bob[1].access_key_id: "Inactive"}
    assert_signed_with_session(session_proxy, bob[0].access_key_id)
    assert "UpdateAccessKey" in session_proxy.actions()


def test_activate_signs_with_session(iam, bob, session_proxy):
    iam.update_access_key(UserName="Bob", AccessKeyId=bob[1].access_key_id, Status="Inactive")

    result = run("activate", "--profile", "work", "--user", "Bob", "--mfa-code", CODE,
                 bob[1].access_key_id)

    assert result.exit_code == 0, result.stderr
    assert set(key_statuses(iam).values()) == {"Active"}
    assert_signed_with_session(session_proxy, bob[0].access_key_id)
    assert "UpdateAccessKey" in session_proxy.actions()


def test_deactivate_refuses_long_term_key(iam, bob, session_proxy):
    result = run("deactivate", "--profile", "work", "--user", "Bob", "--mfa-code", CODE,
                 bob[0].access_key_id)

    assert result.exit_code == 5
    assert f"access key {bob[0].access_key_id} is the key this command is signed with" in (
        result.stderr)
    assert "UpdateAccessKey" not in session_proxy.actions()
    assert set(key_statuses(iam).values()) == {"Active"}
    assert_signed_with_session(session_proxy, bob[0].access_key_id)


def test_delete_signs_with_session(iam, bob, session_proxy):
    iam.update_access_key(UserName="Bob", AccessKeyId=bob[1].access_key_id, Status="Inactive")

    result = run("delete", "--profile", "work", "--user", "Bob", "--mfa-code", CODE,
                 bob[1].access_key_id)

    assert result.exit_code == 0, result.stderr
    assert key_statuses(iam) == {bob[0].access_key_id: "Active"}
    assert_signed_with_session(session_proxy, bob[0].access_key_id)
    assert "DeleteAccessKey" in session_proxy.actions()


def test_delete_warns_about_long_term_key(iam, bob, session_proxy):
    result = run("delete", "--profile", "work", "--user", "Bob", "--mfa-code", CODE,
                 "--force", "--dry-run", bob[0].access_key_id)

    assert result.exit_code == 0, result.stderr
    assert f"{bob[0].access_key_id} signs these requests" in result.stderr
    assert "DeleteAccessKey" not in session_proxy.actions()


def test_audit_signs_with_session(bob, session_proxy):
    result = run("audit", "--profile", "work", "--mfa-code", CODE, "--key-ids", "all",
                 "--output", "json")

    assert result.exit_code == 0, result.stderr
    audited = {key["AccessKeyId"] for key in json.loads(result.stdout)["AccessKeys"]}
    assert audited == {key.access_key_id for key in bob}
    assert_signed_with_session(session_proxy, bob[0].access_key_id)
    assert "GenerateCredentialReport" in session_proxy.actions()


def test_audit_assumes_roles_with_session(moto_server, bob, session_proxy):
    olga = create_user_with_keys(account_iam(moto_server.url, OTHER_ACCOUNT), "Olga", 1)

    result = run("audit", "--profile", "work", "--mfa-code", CODE, "--key-ids", "all",
                 "--accounts", OTHER_ACCOUNT, "--role-name", ROLE_NAME, "--output", "json")

    assert result.exit_code == 0, result.stderr
    audited = {key["AccessKeyId"] for key in json.loads(result.stdout)["AccessKeys"]}
    assert audited == {olga[0].access_key_id}
    tokens = [request for request in session_proxy.requests
              if request.action == "GetSessionToken"]
    assert len(tokens) == 1
    roles = [request for request in session_proxy.requests if request.action == "AssumeRole"]
    assert [request.access_key_id for request in roles] == [SESSION_KEY_ID]


def test_bulk_deactivate_protects_long_term_key(iam, bob, session_proxy):
    result = run("deactivate", "--all-users", "--older-than", "0", "--yes", "--profile", "work",
                 "--mfa-code", CODE, "--output", "json")

    assert result.exit_code == 0, result.stderr
    assert key_statuses(iam) == {bob[0].access_key_id: "Active", bob[1].access_key_id: "Inactive"}
    records = {key["AccessKeyId"]: key for key in json.loads(result.stdout)["AccessKeys"]}
    assert records[bob[0].access_key_id]["Result"] == "skipped"
    assert "signs these requests" in records[bob[0].access_key_id]["Detail"]
    updated = [request.params["AccessKeyId"] for request in session_proxy.requests
               if request.action == "UpdateAccessKey"]
    assert updated == [bob[1].access_key_id]
    assert_signed_with_session(session_proxy, bob[0].access_key_id)


@pytest.mark.parametrize("arguments", [
    ("list", "--user", "Bob"),
    ("deactivate", "--user", "Bob", "AKIAIOSFODNN7EXAMPLE"),
    ("delete", "--user", "Bob", "AKIAIOSFODNN7EXAMPLE"),
    ("audit",),
    ("deactivate", "--all-users", "--older-than", "0", "--yes"),
])
def test_no_code_without_terminal_exits_4(bob, proxy, arguments):
    result = run(*arguments, "--profile", "work")

    assert result.exit_code == 4
    assert f"this profile requires MFA (mfa_serial {SERIAL})" in result.stderr
    assert "pass --mfa-code CODE" in result.stderr
    assert proxy.requests == []


@pytest.mark.parametrize("command", ["list", "audit", "rotate"])
@pytest.mark.parametrize("code", ["abc", "12345", "1234567", "12345a"])
def test_malformed_code_exits_2(bob, proxy, command, code):
    result = run(command, "--profile", "work", "--mfa-code", code)

    assert result.exit_code == 2
    assert f"invalid MFA code '{code}': a code is 6 digits" in result.stderr
    assert proxy.requests == []


def test_rejected_code_exits_4(bob, proxy):
    proxy.fail("GetSessionToken", 403, "AccessDenied",
               "MultiFactorAuthentication failed with invalid MFA one time pass code.")

    result = run("list", "--profile", "work", "--user", "Bob", "--mfa-code", CODE)

    assert result.exit_code == 4
    assert f"get an MFA session for {SERIAL} with STS GetSessionToken failed" in result.stderr
    assert proxy.actions() == ["GetSessionToken"]


def test_code_without_mfa_serial_is_ignored(iam, bob, aws_environment, proxy):
    (aws_environment / "config").write_text("[default]\nregion = us-east-1\n")

    result = run("list", "--profile", "work", "--user", "Bob", "--mfa-code", CODE)

    assert result.exit_code == 0, result.stderr
    assert "--mfa-code is ignored because the profile has no mfa_serial" in result.stderr
    assert "GetSessionToken" not in proxy.actions()
    assert {request.access_key_id for request in proxy.requests} == {bob[0].access_key_id}


def test_temporary_credentials_get_no_session(bob, aws_environment, proxy):
    with open(aws_environment / "credentials", "a") as credentials:
        credentials.write("aws_session_token = FwoGZXIvYXdzEXAMPLETOKEN\n")

    result = run("list", "--profile", "work", "--user", "Bob", "--mfa-code", CODE)

    assert result.exit_code == 0, result.stderr
    assert "--mfa-code is ignored because the credentials" in result.stderr
    assert "already temporary" in result.stderr
    assert "GetSessionToken" not in proxy.actions()


def test_rotate_uses_shared_option(iam, bob, session_proxy):
    result = run("rotate", "--profile", "work", "--mfa-code", CODE,
                 "--delete-inactive-key", "--keep-old")

    assert result.exit_code == 5
    assert session_proxy.actions().count("GetSessionToken") == 1
    token = next(r for r in session_proxy.requests if r.action == "GetSessionToken")
    assert token.params["TokenCode"] == CODE


@pytest.mark.parametrize("command", ["list", "activate", "deactivate", "delete", "audit",
                                     "rotate"])
def test_help_describes_mfa_code(command):
    result = run(command, "--help")

    assert result.exit_code == 0
    assert "--mfa-code CODE" in result.stdout
    assert "mfa_serial" in result.stdout


def run_on_terminal(answer, *arguments):
    pty = pytest.importorskip("pty")
    leader, follower = pty.openpty()
    os.write(leader, answer.encode())
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "keyrot", *arguments],
            stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        stdout, stderr = child.communicate(timeout=WAIT_SECONDS)
    finally:
        os.close(follower)
        os.close(leader)
    return child.returncode, stdout, stderr


def test_code_asked_on_terminal(bob, session_proxy):
    exit_code, _, stderr = run_on_terminal(f"12ab\n{CODE}\n", "list", "--profile", "work",
                                           "--user", "Bob")

    assert exit_code == 0, stderr
    assert f"MFA code for {SERIAL}" in stderr
    assert "invalid MFA code '12ab': a code is 6 digits" in stderr
    assert_signed_with_session(session_proxy, bob[0].access_key_id)


@pytest.fixture
def role_profile(iam, aws_environment):
    """Profile `admin` assumes a role with MFA from profile `base`, which contains Bob's key."""
    key = create_user_with_keys(iam, "Bob", 1)[0]
    (aws_environment / "credentials").write_text(
        f"[base]\naws_access_key_id = {key.access_key_id}\n"
        f"aws_secret_access_key = {key.secret_access_key}\n"
    )
    (aws_environment / "config").write_text(
        "[default]\nregion = us-east-1\n\n[profile admin]\n"
        "role_arn = arn:aws:iam::123456789012:role/admin\nsource_profile = base\n"
        f"mfa_serial = {SERIAL}\n"
    )
    return key


def test_role_profile_takes_mfa_code(role_profile, proxy):
    result = run("list", "--profile", "admin", "--user", "Bob", "--mfa-code", CODE)

    assert result.exit_code == 0, result.stderr
    assumed = [request for request in proxy.requests if request.action == "AssumeRole"]
    assert len(assumed) == 1
    assert assumed[0].params["TokenCode"] == CODE
    assert assumed[0].params["SerialNumber"] == SERIAL
    assert "GetSessionToken" not in proxy.actions()
    assert "ignored" not in result.stderr


def test_role_profile_without_code_or_terminal_exits_4(role_profile, proxy):
    result = run("list", "--profile", "admin", "--user", "Bob")

    assert result.exit_code == 4
    assert "assumes a role that requires MFA" in result.stderr
    assert "pass --mfa-code CODE" in result.stderr
    assert proxy.requests == []


def test_role_profile_verbose_logs_assume_role(role_profile, proxy):
    result = run("list", "--profile", "admin", "--user", "Bob", "--mfa-code", CODE, "--verbose")

    assert result.exit_code == 0, result.stderr
    assert "STS AssumeRole: HTTP 200, request ID" in result.stderr
    assert result.stderr.count("IAM ListAccessKeys: HTTP 200") == 1
