"""keyrot rotate's checks and advice before it changes anything: destination folders, other
sections that hold the old key, role and SSO profiles, dry runs after an interrupted rotation,
MFA codes and environment variables that shadow AWS_PROFILE."""

from __future__ import annotations

import json

import pytest
from conftest import create_user_with_keys, run, sign_as
from rotate_support import (
    COMMENTS_INI,
    install,
    journal_files,
    key_statuses,
    profile_values,
)

CHANGES = {"CreateAccessKey", "UpdateAccessKey", "DeleteAccessKey"}


@pytest.fixture
def bob(iam):
    return create_user_with_keys(iam, "Bob", 1)[0]


@pytest.fixture
def credentials(aws_environment):
    return aws_environment / "credentials"


@pytest.fixture
def config(aws_environment):
    return aws_environment / "config"


def other_key_ids(iam, old_key_id):
    return [key for key in key_statuses(iam, "Bob") if key != old_key_id]


@pytest.mark.parametrize(
    ("options", "named"),
    [(["--env-file"], "--env-file"),
     (["--save-profile", "bob", "--credentials-file"],
      "--credentials-file or AWS_SHARED_CREDENTIALS_FILE")],
)
def test_missing_destination_folder_exits_2_before_any_request(iam, bob, proxy, tmp_path,
                                                                options, named):
    missing = tmp_path / "nonexistent" / "dir"

    result = run("rotate", "--user", "Bob", *options, str(missing / "x.env"))

    assert result.exit_code == 2
    assert result.stderr == (
        f"keyrot: error: the folder {missing} for {missing / 'x.env'} does not exist; create it "
        f"first (mkdir -p -m 700 {missing}) or fix the path given to {named}. keyrot does "
        "not create folders for secrets; nothing was changed\n"
    )
    assert proxy.actions() == []
    assert not (tmp_path / "nonexistent").exists()
    assert key_statuses(iam, "Bob") == {bob.access_key_id: "Active"}


def test_environment_key_to_missing_folder_exits_2(iam, proxy, monkeypatch, tmp_path):
    sign_as(monkeypatch, create_user_with_keys(iam, "ci", 1)[0])

    result = run("rotate", "--env-file", str(tmp_path / "typo" / "ci.env"))

    assert result.exit_code == 2
    assert f"the folder {tmp_path / 'typo'} for " in result.stderr
    assert proxy.actions() == []
    assert not (tmp_path / "typo").exists()


def stale_warning(key_id, section, path):
    return (f"keyrot: warning: access key {key_id} also appears in [{section}] of {path}; that "
            "section is left unchanged and stops working once the old key is retired\n")


def test_destination_file_section_with_old_key_warned(iam, bob, tmp_path):
    target = tmp_path / "f.ini"
    install(target, COMMENTS_INI.replace("[work]", "[default]"), bob)

    result = run("rotate", "--user", "Bob", "--save-profile", "bob",
                 "--credentials-file", str(target))

    assert result.exit_code == 0, result.stderr
    warning = stale_warning(bob.access_key_id, "default", target)
    assert warning in result.stderr
    assert result.stderr.index(warning) < result.stderr.index("keyrot: created ")
    assert profile_values(target, "default")[0] == bob.access_key_id


def test_callers_own_files_with_old_key_warned(iam, bob, credentials, config):
    install(credentials, COMMENTS_INI, bob)
    config.write_text(f"[profile ops]\naws_access_key_id = {bob.access_key_id}\n"
                      "aws_secret_access_key = x\n")
    spare = iam.create_access_key(UserName="Bob")["AccessKey"]["AccessKeyId"]
    iam.update_access_key(UserName="Bob", AccessKeyId=spare, Status="Inactive")

    result = run("rotate", "--user", "Bob", bob.access_key_id, "--output", "json",
                 "--delete-inactive-key")

    assert result.exit_code == 0, result.stderr
    assert stale_warning(bob.access_key_id, "work", credentials) in result.stderr
    assert stale_warning(bob.access_key_id, "profile ops", config) in result.stderr
    assert json.loads(result.stdout)["OldAccessKey"]["Result"] == "deactivated"


def test_dry_run_shows_stale_section_warning(iam, bob, credentials, proxy):
    install(credentials, COMMENTS_INI, bob)

    result = run("rotate", "--user", "Bob", "--output", "json", "--dry-run")

    assert result.exit_code == 0, result.stderr
    assert stale_warning(bob.access_key_id, "work", credentials) in result.stderr
    assert not CHANGES & set(proxy.actions())


def test_profile_rotation_warns_about_config_file_copy(iam, bob, credentials, config):
    install(credentials, COMMENTS_INI, bob)
    config.write_text(f"[profile copy]\naws_access_key_id = {bob.access_key_id}\n"
                      "aws_secret_access_key = x\n")

    result = run("rotate", "--profile", "work")

    assert result.exit_code == 0, result.stderr
    assert stale_warning(bob.access_key_id, "profile copy", config) in result.stderr
    assert "[work]" not in result.stderr.split("saved the new key")[0]


ROLE_CONFIG = ("[profile assumed]\nrole_arn = arn:aws:iam::123456789012:role/admin\n"
               "source_profile = work\n")
SSO_CONFIG = ("[profile sso]\nsso_session = corp\nsso_account_id = 123456789012\n"
              "sso_role_name = Admin\n\n[sso-session corp]\n"
              "sso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\n")


def test_role_profile_exits_5_naming_source_profile(bob, credentials, config, proxy):
    install(credentials, COMMENTS_INI, bob)
    config.write_text(ROLE_CONFIG)

    result = run("rotate", "--profile", "assumed")

    assert result.exit_code == 5
    assert result.stderr == (
        "keyrot: error: profile assumed gets temporary credentials from a role (role_arn "
        "arn:aws:iam::123456789012:role/admin), and those cannot be rotated; nothing was "
        "changed. To go on, rotate the key of its source profile instead: keyrot rotate "
        "--profile work, or, as an administrator, keyrot rotate --user NAME\n"
    )
    assert proxy.actions() == []


def test_sso_profile_exits_5_naming_user_rotation(config, proxy):
    config.write_text(SSO_CONFIG)

    result = run("rotate", "--profile", "sso")

    assert result.exit_code == 5
    assert "profile sso gets temporary credentials from IAM Identity Center SSO (sso_session " \
        "corp)" in result.stderr
    assert "keyrot rotate --user NAME with an administrator's profile" in result.stderr
    assert "add the key" not in result.stderr
    assert proxy.actions() == []


def test_static_keys_beside_role_arn_exit_5(bob, credentials, config, proxy):
    before = install(credentials, COMMENTS_INI, bob)
    config.write_text("[profile work]\nrole_arn = arn:aws:iam::123456789012:role/admin\n"
                      "credential_source = Environment\n")

    result = run("rotate", "--profile", "work")

    assert result.exit_code == 5
    assert "(its aws_access_key_id is never used: botocore takes role_arn first)" in result.stderr
    assert "keyrot rotate --user NAME" in result.stderr
    assert proxy.actions() == []
    assert credentials.read_bytes() == before


def test_credential_process_beside_config_keys_exits_5(bob, config, proxy):
    config.write_text(f"[profile work]\naws_access_key_id = {bob.access_key_id}\n"
                      f"aws_secret_access_key = {bob.secret_access_key}\n"
                      "credential_process = /bin/false\n")

    result = run("rotate", "--profile", "work")

    assert result.exit_code == 5
    assert "gets temporary credentials from credential_process" in result.stderr
    assert proxy.actions() == []


def test_credentials_file_key_beats_credential_process(iam, bob, credentials, config):
    install(credentials, COMMENTS_INI, bob)
    config.write_text("[profile work]\ncredential_process = /bin/false\n")

    result = run("rotate", "--profile", "work")

    assert result.exit_code == 0, result.stderr
    assert key_statuses(iam, "Bob")[bob.access_key_id] == "Inactive"


def leave_orphan_journal(iam, bob, credentials, proxy):
    """Run a rotation whose verification and rollback both fail, leaving its journal behind."""
    install(credentials, COMMENTS_INI, bob)
    verify = proxy.add_rule("GetCallerIdentity", times=None,
                            error=(403, "InvalidClientTokenId", "invalid"),
                            match=lambda request: request.access_key_id != bob.access_key_id)
    delete = proxy.fail("DeleteAccessKey", 500, "ServiceFailure", "Internal failure", times=None)
    assert run("rotate", "--profile", "work", "--verify-timeout", "0").exit_code == 6
    verify.times = delete.times = 0
    [orphan] = other_key_ids(iam, bob.access_key_id)
    return orphan


def test_dry_run_after_interruption_plans_the_rollback(iam, bob, credentials, proxy, state_dir):
    orphan = leave_orphan_journal(iam, bob, credentials, proxy)
    before = credentials.read_bytes()
    journals = [path.read_bytes() for path in journal_files(state_dir)]
    proxy.requests.clear()

    result = run("rotate", "--profile", "work", "--dry-run")

    assert result.exit_code == 0, result.stderr
    assert f"a real run rolls it back first by deleting the new key {orphan}, because [work] " \
        f"in {credentials} still contains the old key {bob.access_key_id}" in result.stderr
    assert f"dry run: would create a new key for Bob, save it to [work] in {credentials}, and " \
        f"the old key {bob.access_key_id} would be deactivated; nothing was changed" \
        in result.stderr
    assert "is active" not in result.stderr
    assert not CHANGES & set(proxy.actions())
    assert key_statuses(iam, "Bob") == {bob.access_key_id: "Active", orphan: "Active"}
    assert credentials.read_bytes() == before
    assert [path.read_bytes() for path in journal_files(state_dir)] == journals


def test_dry_run_after_retire_failure_plans_the_finish(iam, bob, credentials, proxy, state_dir):
    install(credentials, COMMENTS_INI, bob)
    failing = proxy.fail("UpdateAccessKey", 403, "AccessDenied", "not allowed", times=None)
    assert run("rotate", "--profile", "work").exit_code == 6
    failing.times = 0
    new_id, _ = profile_values(credentials, "work")
    proxy.requests.clear()

    result = run("rotate", "--profile", "work", "--dry-run", "--output", "json")

    assert result.exit_code == 0, result.stderr
    assert f"a real run finishes it and creates no other key: [work] in {credentials} contains " \
        f"the new key {new_id}" in result.stderr
    assert f"dry run: the old key {bob.access_key_id} would be deactivated; nothing was changed" \
        in result.stderr
    document = json.loads(result.stdout)
    assert document["DryRun"] is True
    assert document["Recovery"] == "would finish"
    assert document["NewAccessKey"] is None
    assert document["Changed"] == [bob.access_key_id]
    assert not CHANGES & set(proxy.actions())
    assert key_statuses(iam, "Bob") == {bob.access_key_id: "Active", new_id: "Active"}
    assert len(journal_files(state_dir)) == 1


def test_invalid_mfa_code_exits_2_in_one_line(bob, credentials, proxy):
    install(credentials, COMMENTS_INI, bob)

    result = run("rotate", "--profile", "work", "--mfa-code", "abc")

    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert "invalid MFA code 'abc': a code is 6 digits" in result.stderr
    assert proxy.actions() == []


def test_environment_key_beats_aws_profile_with_advice(iam, bob, credentials, monkeypatch, proxy):
    install(credentials, COMMENTS_INI, bob)
    ci_key = create_user_with_keys(iam, "ci", 1)[0]
    sign_as(monkeypatch, ci_key)
    monkeypatch.setenv("AWS_PROFILE", "work")

    result = run("rotate")

    assert result.exit_code == 5
    assert result.stderr == (
        f"keyrot: error: the key {ci_key.access_key_id} comes from the environment variables "
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, which take precedence over "
        "AWS_PROFILE=work, so keyrot has nowhere to store a new one; nothing was changed. To "
        "rotate the profile's key, pass --profile work or unset AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY; to rotate the variables' key, give a destination: --output "
        "json, --show-secret, --env-file PATH or --save-profile NAME\n"
    )
    assert proxy.actions() == []


def test_retire_failure_names_rerun_command_for_user(iam, bob, proxy, tmp_path):
    env_file = tmp_path / "bob.env"
    proxy.fail("UpdateAccessKey", 403, "AccessDenied", "not allowed", times=None)

    result = run("rotate", "--user", "Bob", "--env-file", str(env_file))

    assert result.exit_code == 6
    assert f"or run keyrot rotate --user Bob --env-file {env_file}, which finds the journal" \
        in result.stderr


def test_two_active_keys_exit_5_at_once(iam, bob, proxy, tmp_path):
    kept = run("rotate", "--user", "Bob", "--env-file", str(tmp_path / "bob.env"), "--keep-old")
    assert kept.exit_code == 0, kept.stderr
    [new_id] = other_key_ids(iam, bob.access_key_id)
    proxy.requests.clear()

    result = run("rotate", "--user", "Bob", "--env-file", str(tmp_path / "bob.env"))

    assert result.exit_code == 5
    assert "name the one to replace" not in result.stderr
    assert "Bob has two active access keys, the most IAM allows, so keyrot cannot " \
        "create a new one and will not retire an active key on its own. Nothing was changed; " \
        "deactivate the key that is no longer used (keyrot deactivate --user Bob " \
        "ACCESS_KEY_ID), then run keyrot rotate again" in result.stderr
    assert f"\n  {bob.access_key_id}  Active  created 20" in result.stderr
    assert f"\n  {new_id}  Active  created 20" in result.stderr
    assert not CHANGES & set(proxy.actions())
    assert key_statuses(iam, "Bob") == {bob.access_key_id: "Active", new_id: "Active"}


def test_retire_failure_commands_keep_connection_options(iam, bob, credentials, proxy, tmp_path):
    install(credentials, COMMENTS_INI, bob)
    carol = create_user_with_keys(iam, "Carol", 1)[0]
    env_file = tmp_path / "carol.env"
    connection = ["--profile", "work", "--region", "us-east-1", "--endpoint-url", proxy.url]
    failing = proxy.fail("UpdateAccessKey", 403, "AccessDenied", "not allowed", times=None)

    result = run("rotate", *connection, "--user", "Carol", "--env-file", str(env_file))

    assert result.exit_code == 6
    [new_id] = [key for key in key_statuses(iam, "Carol") if key != carol.access_key_id]
    flags = " ".join(connection)
    finish = f"keyrot deactivate {flags} --user Carol {carol.access_key_id}"
    assert f"to finish: {finish}, or run keyrot rotate {flags} --user Carol --env-file " \
        f"{env_file}, which finds the journal" in result.stderr

    failing.times = 0
    done = run(*finish.split()[1:])

    assert done.exit_code == 0, done.stderr
    assert key_statuses(iam, "Carol") == {carol.access_key_id: "Inactive", new_id: "Active"}
