"""keyrot rotate against the local IAM endpoint: profile files, destinations and refusals."""

from __future__ import annotations

import configparser
import json
import os
import stat
from pathlib import Path

import botocore.session
import pytest
from conftest import create_user_with_keys, grant_admin, run, sign_as
from rotate_support import (
    COMMENTS_INI,
    PADDING_INI,
    ROOT_ARN,
    ROOT_INI,
    TEMPORARY_INI,
    TWO_PROFILES_INI,
    UPPERCASE_INI,
    install,
    journal_files,
    key_statuses,
    profile_values,
    signs_as,
    use_profile_files,
)

IAM_ACTIONS = {
    "ListAccessKeys", "CreateAccessKey", "UpdateAccessKey", "DeleteAccessKey",
    "GetAccessKeyLastUsed",
}


@pytest.fixture
def bob(iam):
    return create_user_with_keys(iam, "Bob", 1)[0]


@pytest.fixture
def credentials(aws_environment):
    return aws_environment / "credentials"


def changed_lines(before: bytes, after: bytes) -> list[tuple[bytes, bytes]]:
    old_lines = before.splitlines(keepends=True)
    new_lines = after.splitlines(keepends=True)
    assert len(old_lines) == len(new_lines)
    return [(old, new) for old, new in zip(old_lines, new_lines, strict=True) if old != new]


def new_key_id(iam, old_key_id):
    others = [key for key in key_statuses(iam, "Bob") if key != old_key_id]
    assert len(others) == 1
    return others[0]


def test_f01_comments_profile_rotates(iam, bob, credentials):
    before = install(credentials, COMMENTS_INI, bob)

    result = run("rotate", "--profile", "work")

    assert result.exit_code == 0, result.stderr
    after = credentials.read_bytes()
    new_id = new_key_id(iam, bob.access_key_id)
    changes = changed_lines(before, after)
    assert len(changes) == 2
    assert changes[0] == (
        f"aws_access_key_id = {bob.access_key_id}\n".encode(),
        f"aws_access_key_id = {new_id}\n".encode(),
    )
    assert changes[1][0] == f"aws_secret_access_key = {bob.secret_access_key}\n".encode()
    assert key_statuses(iam, "Bob") == {bob.access_key_id: "Inactive", new_id: "Active"}
    assert f"saved the new key to [work] in {credentials}" in result.stderr
    assert f"deactivated the old key {bob.access_key_id}" in result.stderr
    assert f"* {new_id}" in result.stdout
    assert f"* {bob.access_key_id}" in result.stdout


def test_f01_old_key_retired_with_new_key(iam, bob, credentials, proxy):
    install(credentials, COMMENTS_INI, bob)

    result = run("rotate", "--profile", "work")

    assert result.exit_code == 0, result.stderr
    new_id = new_key_id(iam, bob.access_key_id)
    update = next(r for r in proxy.requests if r.action == "UpdateAccessKey")
    assert update.access_key_id == new_id
    assert update.params["AccessKeyId"] == bob.access_key_id
    assert update.params["Status"] == "Inactive"
    verify = [r for r in proxy.requests if r.action == "GetCallerIdentity"]
    assert [r.access_key_id for r in verify] == [bob.access_key_id, new_id]


def test_dry_run_names_spare_deletion(iam, bob, credentials):
    spare = iam.create_access_key(UserName="Bob")["AccessKey"]["AccessKeyId"]
    iam.update_access_key(UserName="Bob", AccessKeyId=spare, Status="Inactive")
    install(credentials, COMMENTS_INI, bob)

    result = run("rotate", "--profile", "work", "--dry-run", "--delete-inactive-key")

    assert result.exit_code == 0, result.stderr
    assert f"would delete the inactive key {spare}, then create a new key" in result.stderr
    assert spare in key_statuses(iam, "Bob")


def test_f01_journal_removed_afterwards(iam, bob, credentials, state_dir):
    install(credentials, COMMENTS_INI, bob)

    result = run("rotate", "--profile", "work")

    assert result.exit_code == 0, result.stderr
    assert journal_files(state_dir) == []


def test_f02_default_profile_only(iam, bob, credentials, monkeypatch):
    use_profile_files(monkeypatch)
    template = TWO_PROFILES_INI.replace("ASIAEXAMPLETMP00001", "AKIAIOSFODNN7EXAMPLE")
    before = install(credentials, template, bob)
    tmp_section_before = before.split(b"[tmp]")[1]

    result = run("rotate")

    assert result.exit_code == 0, result.stderr
    after = credentials.read_bytes()
    assert len(changed_lines(before, after)) == 2
    assert after.split(b"[tmp]")[1] == tmp_section_before
    assert f"also appears in [tmp] of {credentials}" in result.stderr


def test_f02_no_warning_without_duplicate(iam, bob, credentials, monkeypatch):
    use_profile_files(monkeypatch)
    install(credentials, TWO_PROFILES_INI, bob)

    result = run("rotate")

    assert result.exit_code == 0, result.stderr
    assert "also appears" not in result.stderr


def test_f03_padding_and_separators_kept(iam, bob, credentials):
    install(credentials, PADDING_INI, bob)

    result = run("rotate", "--profile", "work")

    assert result.exit_code == 0, result.stderr
    new_id = new_key_id(iam, bob.access_key_id)
    lines = credentials.read_text().splitlines(keepends=True)
    assert lines[1] == f"aws_access_key_id     = {new_id}\n"
    assert lines[2].startswith("aws_secret_access_key\t=\t")
    assert lines[2].endswith("   \n")
    assert lines[3] == "region: eu-west-1\n"


@pytest.mark.parametrize(
    "template, profile",
    [
        (PADDING_INI, "missing"),
        (PADDING_INI.replace("aws_secret_access_key\t=\tOLDSECRET   \n", ""), "work"),
        (PADDING_INI.replace("aws_access_key_id     = AKIAIOSFODNN7EXAMPLE\n", ""), "work"),
    ],
    ids=["no-profile", "no-secret-line", "no-key-line"],
)
def test_f03_missing_profile_or_line_exits_3(iam, bob, credentials, proxy, template, profile):
    install(credentials, template, bob)

    result = run("rotate", "--profile", profile)

    assert result.exit_code == 3, result.stderr
    assert str(credentials) in result.stderr
    assert profile in result.stderr
    assert "CreateAccessKey" not in proxy.actions()
    assert key_statuses(iam, "Bob") == {bob.access_key_id: "Active"}


def test_f04_uppercase_names_kept(iam, bob, credentials):
    install(credentials, UPPERCASE_INI, bob)

    result = run("rotate", "--profile", "work")

    assert result.exit_code == 0, result.stderr
    new_id = new_key_id(iam, bob.access_key_id)
    text = credentials.read_text()
    assert text.startswith(f"[work]\nAWS_ACCESS_KEY_ID = {new_id}\nAWS_SECRET_ACCESS_KEY = ")
    assert "aws_access_key_id" not in text
    parser = configparser.RawConfigParser()
    parser.read_string(text)
    assert parser["work"]["aws_access_key_id"] == new_id
    session = botocore.session.Session(profile="work")
    assert session.get_credentials().access_key == new_id


@pytest.mark.parametrize("mode", [0o600, 0o644])
def test_f05_mode_kept(iam, bob, credentials, mode):
    install(credentials, COMMENTS_INI, bob, mode=mode)

    result = run("rotate", "--profile", "work")

    assert result.exit_code == 0, result.stderr
    assert stat.S_IMODE(credentials.stat().st_mode) == mode
    if mode == 0o644:
        assert f"chmod 600 {credentials}" in result.stderr
    else:
        assert "chmod" not in result.stderr


def test_f05_created_file_is_private(iam, bob, tmp_path):
    target = tmp_path / "new" / "credentials"
    target.parent.mkdir()

    result = run("rotate", "--user", "Bob", "--save-profile", "bob",
                 "--credentials-file", str(target))

    assert result.exit_code == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert profile_values(target, "bob")[0] == new_key_id(iam, bob.access_key_id)


def test_f07_temporary_profile_exits_5(credentials, proxy):
    credentials.write_text(TEMPORARY_INI)

    result = run("rotate", "--profile", "work")

    assert result.exit_code == 5
    assert "temporary STS credentials" in result.stderr
    assert "cannot be rotated" in result.stderr
    assert proxy.actions() == []
    assert credentials.read_text() == TEMPORARY_INI


def test_f07_written_section_has_no_session_token(iam, bob, credentials):
    install(credentials, TWO_PROFILES_INI, bob)

    result = run("rotate", "--user", "Bob", "--save-profile", "tmp")

    assert result.exit_code == 0, result.stderr
    tmp_section = credentials.read_text().split("[tmp]")[1]
    assert "aws_session_token" not in tmp_section
    assert "aws_security_token" not in tmp_section


def test_f08_two_keys_exits_5_listing_both(iam, bob, credentials, proxy):
    spare = iam.create_access_key(UserName="Bob")["AccessKey"]["AccessKeyId"]
    iam.update_access_key(UserName="Bob", AccessKeyId=spare, Status="Inactive")
    before = install(credentials, COMMENTS_INI, bob)

    result = run("rotate", "--profile", "work")

    assert result.exit_code == 5
    assert "--delete-inactive-key" in result.stderr
    listing = [line for line in result.stderr.splitlines() if line.startswith("  ")]
    assert [line.split()[:2] for line in listing] == [
        [bob.access_key_id, "Active"], [spare, "Inactive"]
    ]
    assert len({line.index("created 20") for line in listing}) == 1
    assert "last used" in result.stderr
    assert "never used" in result.stderr
    assert "CreateAccessKey" not in proxy.actions()
    assert credentials.read_bytes() == before


def test_f08_opt_in_deletes_inactive_spare(iam, bob, credentials):
    spare = iam.create_access_key(UserName="Bob")["AccessKey"]["AccessKeyId"]
    iam.update_access_key(UserName="Bob", AccessKeyId=spare, Status="Inactive")
    install(credentials, COMMENTS_INI, bob)

    result = run("rotate", "--profile", "work", "--delete-inactive-key")

    assert result.exit_code == 0, result.stderr
    statuses = key_statuses(iam, "Bob")
    assert spare not in statuses
    assert statuses[bob.access_key_id] == "Inactive"
    assert f"deleted the inactive key {spare}" in result.stderr


@pytest.mark.parametrize(
    "flags", [[], ["--delete-inactive-key"], ["--delete-inactive-key", "--yes", "--delete"]]
)
def test_f08_active_second_key_never_touched(iam, bob, credentials, proxy, flags):
    other = iam.create_access_key(UserName="Bob")["AccessKey"]["AccessKeyId"]
    before = install(credentials, COMMENTS_INI, bob)

    result = run("rotate", "--profile", "work", *flags)

    assert result.exit_code == 5
    assert f"the other key {other} is active" in result.stderr
    assert key_statuses(iam, "Bob") == {bob.access_key_id: "Active", other: "Active"}
    assert not {"CreateAccessKey", "UpdateAccessKey", "DeleteAccessKey"} & set(proxy.actions())
    assert credentials.read_bytes() == before


def test_f10_root_sends_no_user_name(iam, bob, credentials, proxy):
    proxy.add_rule(
        "GetCallerIdentity",
        times=None,
        rewrite=lambda body: body.replace(
            b"arn:aws:iam::123456789012:user/Bob", ROOT_ARN.encode()
        ),
    )
    install(credentials, ROOT_INI, bob)

    result = run("rotate", "--profile", "root")

    assert result.exit_code == 0, result.stderr
    assert "root access keys" in result.stderr
    iam_requests = [request for request in proxy.requests if request.action in IAM_ACTIONS]
    assert {request.action for request in iam_requests} >= {"CreateAccessKey", "UpdateAccessKey"}
    assert [request.action for request in iam_requests if "UserName" in request.params] == []
    assert profile_values(credentials, "root")[0] == new_key_id(iam, bob.access_key_id)


def test_f11_profile_beats_environment_key(iam, bob, credentials, monkeypatch, tmp_path):
    ci_key = create_user_with_keys(iam, "ci", 1)[0]
    sign_as(monkeypatch, ci_key)
    other_file = tmp_path / "home" / ".aws" / "credentials"
    other_file.parent.mkdir(parents=True)
    other_file.write_text("[default]\naws_access_key_id = AKIAOTHERFILE0000000\n"
                          "aws_secret_access_key = other\n")
    install(credentials, TWO_PROFILES_INI, bob)

    result = run("rotate", "--profile", "default")

    assert result.exit_code == 0, result.stderr
    assert f"[default] in {credentials}" in result.stderr
    assert profile_values(credentials, "default")[0] == new_key_id(iam, bob.access_key_id)
    assert key_statuses(iam, "ci") == {ci_key.access_key_id: "Active"}
    assert "AKIAOTHERFILE0000000" in other_file.read_text()


def test_f11_environment_key_without_destination_exits_5(iam, bob, credentials, monkeypatch,
                                                        proxy):
    ci_key = create_user_with_keys(iam, "ci", 1)[0]
    sign_as(monkeypatch, ci_key)
    before = install(credentials, TWO_PROFILES_INI, bob)

    result = run("rotate")

    assert result.exit_code == 5
    assert "environment variables" in result.stderr
    assert "--profile" in result.stderr
    assert "--output json" in result.stderr
    assert proxy.actions() == []
    assert credentials.read_bytes() == before


def test_environment_key_to_env_file(iam, monkeypatch, tmp_path):
    ci_key = create_user_with_keys(iam, "ci", 1)[0]
    sign_as(monkeypatch, ci_key)
    env_file = tmp_path / "ci.env"
    env_file.write_text("REGION=eu-west-1\nAWS_ACCESS_KEY_ID=old\nAWS_SESSION_TOKEN=x\n")
    env_file.chmod(0o600)

    result = run("rotate", "--env-file", str(env_file))

    assert result.exit_code == 0, result.stderr
    new_id = next(key for key in key_statuses(iam, "ci") if key != ci_key.access_key_id)
    lines = env_file.read_text().splitlines()
    assert lines[0] == "REGION=eu-west-1"
    assert lines[1] == f"AWS_ACCESS_KEY_ID={new_id}"
    assert lines[2].startswith("AWS_SECRET_ACCESS_KEY=")
    assert len(lines) == 3
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert key_statuses(iam, "ci")[ci_key.access_key_id] == "Inactive"


def test_user_without_destination_exits_2(iam, bob, proxy):
    result = run("rotate", "--user", "Bob")

    assert result.exit_code == 2
    assert "--save-profile" in result.stderr
    assert "--output json" in result.stderr
    assert proxy.actions() == []


def test_user_json_document(iam, bob):
    result = run("rotate", "--user", "Bob", "--output", "json")

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    new_id = new_key_id(iam, bob.access_key_id)
    assert document["UserName"] == "Bob"
    assert document["Action"] == "rotate"
    assert document["DryRun"] is False
    assert [key["AccessKeyId"] for key in document["Before"]] == [bob.access_key_id]
    assert {key["AccessKeyId"]: key["Status"] for key in document["After"]} == {
        bob.access_key_id: "Inactive", new_id: "Active"
    }
    assert document["Changed"] == [new_id, bob.access_key_id]
    assert document["NewAccessKey"]["AccessKeyId"] == new_id
    assert signs_as(os.environ["AWS_ENDPOINT_URL"], new_id,
                    document["NewAccessKey"]["SecretAccessKey"]) is not None
    assert document["OldAccessKey"] == {
        "AccessKeyId": bob.access_key_id, "Action": "deactivate", "Result": "deactivated"
    }
    assert document["Destination"] == {"Type": "output"}


def test_user_delete_old_key(iam, bob):
    result = run("rotate", "--user", "Bob", "--output", "json", "--delete")

    assert result.exit_code == 0, result.stderr
    new_id = json.loads(result.stdout)["NewAccessKey"]["AccessKeyId"]
    assert key_statuses(iam, "Bob") == {new_id: "Active"}
    assert json.loads(result.stdout)["OldAccessKey"]["Result"] == "deleted"


def test_user_keep_old_key(iam, bob):
    result = run("rotate", "--user", "Bob", "--show-secret", "--keep-old")

    assert result.exit_code == 0, result.stderr
    new_id = new_key_id(iam, bob.access_key_id)
    assert key_statuses(iam, "Bob") == {bob.access_key_id: "Active", new_id: "Active"}
    assert f"{new_id} secret access key: " in result.stdout
    assert f"kept active the old key {bob.access_key_id}" in result.stderr


def test_user_env_file_destination(iam, bob, tmp_path):
    env_file = tmp_path / "bob.env"

    result = run("rotate", "--user", "Bob", bob.access_key_id, "--env-file", str(env_file))

    assert result.exit_code == 0, result.stderr
    new_id = new_key_id(iam, bob.access_key_id)
    lines = env_file.read_text().splitlines()
    assert lines[0] == f"AWS_ACCESS_KEY_ID={new_id}"
    secret = lines[1].removeprefix("AWS_SECRET_ACCESS_KEY=")
    assert signs_as(os.environ["AWS_ENDPOINT_URL"], new_id, secret) is not None
    assert secret not in result.stdout + result.stderr
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600



def test_env_file_symlink_is_written_through(iam, bob, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    target = real / "app.env"
    target.write_text("REGION=eu-west-1\n")
    target.chmod(0o600)
    link = tmp_path / "link.env"
    link.symlink_to(target)

    result = run("rotate", "--user", "Bob", "--env-file", str(link))

    assert result.exit_code == 0, result.stderr
    new_id = new_key_id(iam, bob.access_key_id)
    assert link.is_symlink()
    assert os.readlink(link) == str(target)
    lines = target.read_text().splitlines()
    assert lines[:2] == ["REGION=eu-west-1", f"AWS_ACCESS_KEY_ID={new_id}"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert f"saved the new key to {target}" in result.stderr
    assert "chmod" not in result.stderr


@pytest.mark.parametrize("mode", [0o600, 0o640])
def test_env_file_mode_kept(iam, bob, tmp_path, mode):
    env_file = tmp_path / "bob.env"
    env_file.write_text("REGION=eu-west-1\n")
    env_file.chmod(mode)

    result = run("rotate", "--user", "Bob", "--env-file", str(env_file))

    assert result.exit_code == 0, result.stderr
    assert stat.S_IMODE(env_file.stat().st_mode) == mode
    if mode == 0o640:
        assert f"{env_file} is accessible to users other than its owner (mode 0640); " \
            f"run chmod 600 {env_file}" in result.stderr
    else:
        assert "chmod" not in result.stderr


def test_user_text_output(iam, bob, tmp_path):
    result = run("rotate", "--user", "Bob", "--env-file", str(tmp_path / "bob.env"),
                 "--output", "text")

    assert result.exit_code == 0, result.stderr
    new_id = new_key_id(iam, bob.access_key_id)
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [(row[1], row[2], row[-1]) for row in rows] == [
        (bob.access_key_id, "Inactive", "deactivated"),
        (new_id, "Active", "created"),
    ]


def test_unknown_key_id_exits_3(iam, bob, proxy):
    result = run("rotate", "--user", "Bob", "AKIAUNKNOWN000000000", "--output", "json")

    assert result.exit_code == 3
    assert "AKIAUNKNOWN000000000" in result.stderr
    assert "CreateAccessKey" not in proxy.actions()


def test_unparsable_file_exits_2(iam, bob, credentials, proxy):
    install(credentials, COMMENTS_INI + COMMENTS_INI.split("# --- personal")[0], bob)

    result = run("rotate", "--profile", "work")

    assert result.exit_code == 2
    assert proxy.actions() == []


def test_dry_run_changes_nothing(iam, bob, credentials, proxy, state_dir):
    before = install(credentials, COMMENTS_INI, bob)

    result = run("rotate", "--profile", "work", "--dry-run", "--output", "json")

    assert result.exit_code == 0, result.stderr
    assert credentials.read_bytes() == before
    assert key_statuses(iam, "Bob") == {bob.access_key_id: "Active"}
    assert not {"CreateAccessKey", "UpdateAccessKey", "DeleteAccessKey"} & set(proxy.actions())
    document = json.loads(result.stdout)
    assert document["DryRun"] is True
    assert document["NewAccessKey"] is None
    assert document["Destination"]["Section"] == "work"
    assert f"[work] in {credentials}" in result.stderr
    assert f"{bob.access_key_id} would be deactivated" in result.stderr
    assert journal_files(state_dir) == []


def test_old_key_no_longer_works(iam, bob, credentials, moto_server):
    grant_admin(iam, "Bob")
    install(credentials, COMMENTS_INI, bob)
    moto_server.auth_checking(enabled=True)

    result = run("rotate", "--profile", "work")

    assert result.exit_code == 0, result.stderr
    endpoint = moto_server.url
    new_id, new_secret = profile_values(credentials, "work")
    assert signs_as(endpoint, new_id, new_secret) == "arn:aws:iam::123456789012:user/Bob"
    assert signs_as(endpoint, bob.access_key_id, bob.secret_access_key) is None


def test_mfa_code_used_for_iam_calls(iam, bob, credentials, aws_environment, proxy):
    install(credentials, COMMENTS_INI, bob)
    (aws_environment / "config").write_text(
        "[profile work]\nmfa_serial = arn:aws:iam::123456789012:mfa/Bob\n"
    )

    result = run("rotate", "--profile", "work", "--mfa-code", "123456")

    assert result.exit_code == 0, result.stderr
    assert proxy.actions().count("GetSessionToken") == 1
    token_request = next(r for r in proxy.requests if r.action == "GetSessionToken")
    assert token_request.params["TokenCode"] == "123456"
    assert token_request.params["SerialNumber"] == "arn:aws:iam::123456789012:mfa/Bob"
    listing = next(r for r in proxy.requests if r.action == "ListAccessKeys")
    assert listing.access_key_id != bob.access_key_id
    assert listing.params["UserName"] == "Bob"


def test_mfa_without_code_or_terminal_exits_4(iam, bob, credentials, aws_environment, proxy):
    before = install(credentials, COMMENTS_INI, bob)
    (aws_environment / "config").write_text(
        "[profile work]\nmfa_serial = arn:aws:iam::123456789012:mfa/Bob\n"
    )

    result = run("rotate", "--profile", "work")

    assert result.exit_code == 4
    assert "--mfa-code" in result.stderr
    assert proxy.actions() == []
    assert credentials.read_bytes() == before


def test_secret_never_logged_with_verbose(iam, bob, credentials):
    install(credentials, COMMENTS_INI, bob)

    result = run("rotate", "--profile", "work", "--verbose")

    assert result.exit_code == 0, result.stderr
    _, new_secret = profile_values(credentials, "work")
    assert new_secret not in result.stderr
    assert new_secret not in result.stdout


def test_help_lists_destinations():
    result = run("rotate", "--help")

    assert result.exit_code == 0
    for option in ("--save-profile", "--env-file", "--delete", "--keep-old",
                   "--delete-inactive-key", "--verify-timeout", "--mfa-code"):
        assert option in result.stdout


def test_delete_and_keep_old_conflict(proxy):
    result = run("rotate", "--user", "Bob", "--output", "json", "--delete", "--keep-old")

    assert result.exit_code == 2
    assert proxy.actions() == []


def test_profile_rotation_rejects_env_file(credentials, bob, proxy, tmp_path: Path):
    install(credentials, COMMENTS_INI, bob)

    result = run("rotate", "--profile", "work", "--env-file", str(tmp_path / "x.env"))

    assert result.exit_code == 2
    assert proxy.actions() == []


def test_user_with_path_acts_on_name(iam, credentials, proxy):
    key = create_user_with_keys(iam, "Bob", 1, path="/team/")[0]
    install(credentials, COMMENTS_INI, key)

    result = run("rotate", "--profile", "work")

    assert result.exit_code == 0, result.stderr
    create = next(r for r in proxy.requests if r.action == "CreateAccessKey")
    assert create.params["UserName"] == "Bob"
    assert key_statuses(iam, "Bob")[key.access_key_id] == "Inactive"


def test_user_rotation_of_signing_key_exits_5(iam, bob, monkeypatch, proxy):
    sign_as(monkeypatch, bob)

    result = run("rotate", "--user", "Bob", "--output", "json")

    assert result.exit_code == 5
    assert f"access key {bob.access_key_id} signs this request" in result.stderr
    assert "CreateAccessKey" not in proxy.actions()
    assert key_statuses(iam, "Bob") == {bob.access_key_id: "Active"}


def test_config_file_profile_rotates(iam, bob, aws_environment, monkeypatch):
    config = aws_environment / "config"
    config.write_text(
        "[default]\nregion = us-east-1\n\n[profile work]\n"
        f"aws_access_key_id = {bob.access_key_id}\n"
        f"aws_secret_access_key = {bob.secret_access_key}\n"
    )

    result = run("rotate", "--profile", "work")

    assert result.exit_code == 0, result.stderr
    new_id = new_key_id(iam, bob.access_key_id)
    assert f"[profile work] in {config}" in result.stderr
    assert f"aws_access_key_id = {new_id}\n" in config.read_text()
    assert (aws_environment / "credentials").read_text() == ""
