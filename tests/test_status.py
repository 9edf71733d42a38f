"""keyrot list, activate and deactivate against the local IAM endpoint."""

from __future__ import annotations

import json
import re

import pytest
from conftest import create_user_with_keys, grant_admin, run, sign_as

ROOT_ARN_ELEMENT = b"<Arn>arn:aws:iam::123456789012:root</Arn>"


def key_status(iam, user_name):
    keys = iam.list_access_keys(UserName=user_name)["AccessKeyMetadata"]
    return {key["AccessKeyId"]: key["Status"] for key in keys}


def test_deactivate_sets_key_inactive(iam):
    first, second = create_user_with_keys(iam, "Bob", 2)

    result = run("deactivate", "--user", "Bob", first.access_key_id)

    assert result.exit_code == 0, result.stderr
    assert key_status(iam, "Bob") == {
        first.access_key_id: "Inactive",
        second.access_key_id: "Active",
    }
    assert "Bob: before" in result.stdout
    assert "Bob: after" in result.stdout
    assert f"* {first.access_key_id}" in result.stdout
    assert f"* {second.access_key_id}" not in result.stdout
    assert f"set {first.access_key_id} to Inactive" in result.stderr


def test_activate_sets_key_active(iam):
    key = create_user_with_keys(iam, "Bob", 1)[0]
    iam.update_access_key(UserName="Bob", AccessKeyId=key.access_key_id, Status="Inactive")

    result = run("activate", "--user", "Bob", key.access_key_id)

    assert result.exit_code == 0, result.stderr
    assert key_status(iam, "Bob") == {key.access_key_id: "Active"}


def test_deactivate_several_keys(iam):
    first, second = create_user_with_keys(iam, "Bob", 2)

    result = run("deactivate", "--user", "Bob", first.access_key_id, second.access_key_id,
                 "--output", "json")

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["Changed"] == [first.access_key_id, second.access_key_id]
    assert set(key_status(iam, "Bob").values()) == {"Inactive"}


def test_deactivate_json_document(iam):
    first, _second = create_user_with_keys(iam, "Bob", 2)

    result = run("deactivate", "--user", "Bob", first.access_key_id, "--output", "json")

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert list(document) == ["UserName", "Action", "DryRun", "Before", "After", "Changed"]
    assert document["UserName"] == "Bob"
    assert document["Action"] == "deactivate"
    assert document["DryRun"] is False
    assert document["Changed"] == [first.access_key_id]
    assert [key["Status"] for key in document["Before"]] == ["Active", "Active"]
    assert [key["Status"] for key in document["After"]] == ["Inactive", "Active"]
    record = document["After"][0]
    assert list(record) == ["UserName", "AccessKeyId", "Status", "CreateDate", "LastUsedDate",
                            "LastUsedService", "LastUsedRegion"]
    assert record["CreateDate"].endswith("Z")


def test_already_inactive_sends_no_update(iam, proxy):
    key = create_user_with_keys(iam, "Bob", 1)[0]
    iam.update_access_key(UserName="Bob", AccessKeyId=key.access_key_id, Status="Inactive")

    result = run("deactivate", "--user", "Bob", key.access_key_id, "--output", "json")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["Changed"] == []
    assert "UpdateAccessKey" not in proxy.actions()
    assert f"{key.access_key_id} was already Inactive; nothing sent" in result.stderr


def test_dry_run_changes_nothing(iam, proxy):
    key = create_user_with_keys(iam, "Bob", 1)[0]

    result = run("deactivate", "--dry-run", "--user", "Bob", key.access_key_id,
                 "--output", "json")

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["DryRun"] is True
    assert document["Changed"] == [key.access_key_id]
    assert document["After"][0]["Status"] == "Inactive"
    assert key_status(iam, "Bob") == {key.access_key_id: "Active"}
    assert "UpdateAccessKey" not in proxy.actions()


def test_text_output_is_tab_separated(iam):
    first, second = create_user_with_keys(iam, "Bob", 2)

    result = run("deactivate", "--user", "Bob", first.access_key_id, "--output", "text")

    assert result.exit_code == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [row[1] for row in rows] == [first.access_key_id, second.access_key_id]
    assert [row[2] for row in rows] == ["Inactive", "Active"]
    assert [row[-1] for row in rows] == ["changed", "-"]
    assert all(len(row) == 8 for row in rows)


def test_list_shows_last_use(iam):
    key = create_user_with_keys(iam, "Bob", 1)[0]

    result = run("list", "--user", "Bob", "--output", "json")

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["UserName"] == "Bob"
    assert [record["AccessKeyId"] for record in document["AccessKeys"]] == [key.access_key_id]
    assert "LastUsedDate" in document["AccessKeys"][0]


def test_list_table_shows_age(iam):
    create_user_with_keys(iam, "Bob", 1)

    result = run("list", "--user", "Bob")

    assert result.exit_code == 0, result.stderr
    assert "Access keys of Bob" in result.stdout
    assert "(0d)" in result.stdout


def test_unknown_key_exits_3_before_change(iam, proxy):
    key = create_user_with_keys(iam, "Bob", 1)[0]

    result = run("deactivate", "--user", "Bob", key.access_key_id, "AKIAIOSFODNN7EXAMPLE")

    assert result.exit_code == 3
    assert "AKIAIOSFODNN7EXAMPLE not found for Bob" in result.stderr
    assert key.access_key_id in result.stderr
    assert "UpdateAccessKey" not in proxy.actions()


def test_unknown_user_exits_3():
    result = run("deactivate", "--user", "Nobody", "AKIAIOSFODNN7EXAMPLE")

    assert result.exit_code == 3
    assert "The user with name Nobody cannot be found (NoSuchEntity)" in result.stderr
    assert "check the spelling of 'Nobody'" in result.stderr
    assert result.stdout == ""


def test_root_user_name_explains_root_keys(iam):
    create_user_with_keys(iam, "admin", 1)

    result = run("deactivate", "--user", "root", "AKIAIOSFODNN7EXAMPLE")

    assert result.exit_code == 3
    assert "root access keys are managed by signing with root credentials" in result.stderr
    assert "leaving out --user" in result.stderr


@pytest.mark.parametrize("user_name", ["team/Bob", "Bøb", "a" * 65, "", "Bob Smith"])
def test_invalid_user_name_exits_2_before_request(proxy, user_name):
    result = run("deactivate", "--user", user_name, "AKIAIOSFODNN7EXAMPLE")

    assert result.exit_code == 2
    assert "a user name has no path" in result.stderr
    assert "ASCII letters, digits and +=,.@_-, at most 64 characters" in result.stderr
    assert proxy.requests == []


@pytest.mark.parametrize(
    "key_id", ["AKIA123", "AKIA-IOSFODNN7EXAMPLE", "A" * 129, "ÄKIAIOSFODNN7EXAMPLE"]
)
def test_invalid_key_id_exits_2_before_request(proxy, key_id):
    result = run("deactivate", "--user", "Bob", key_id)

    assert result.exit_code == 2
    assert f"invalid access key ID {key_id!r}" in result.stderr
    assert proxy.requests == []


def test_caller_with_iam_path_acts_on_user_name(iam, monkeypatch):
    key = create_user_with_keys(iam, "Bob", 1, path="/team/")[0]
    sign_as(monkeypatch, key)

    result = run("list", "--output", "json")

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["UserName"] == "Bob"
    assert document["Caller"]["Arn"] == "arn:aws:iam::123456789012:user/team/Bob"


def test_without_user_sends_no_user_name(iam, monkeypatch, proxy):
    first, second = create_user_with_keys(iam, "Bob", 2)
    sign_as(monkeypatch, first)

    result = run("deactivate", second.access_key_id)

    assert result.exit_code == 0, result.stderr
    assert "GetCallerIdentity" in proxy.actions()
    iam_requests = [request for request in proxy.requests if request.action != "GetCallerIdentity"]
    assert all("UserName" not in request.params for request in iam_requests)
    assert "Bob (the caller, arn:aws:iam::123456789012:user/Bob)" in result.stdout


def write_profile(aws_folder, profile, key):
    (aws_folder / "credentials").write_text(
        f"[{profile}]\naws_access_key_id = {key.access_key_id}\n"
        f"aws_secret_access_key = {key.secret_access_key}\n"
    )


@pytest.fixture
def bob_signs_with_profile(iam, monkeypatch, aws_environment):
    key = create_user_with_keys(iam, "Bob", 1)[0]
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    write_profile(aws_environment, "work", key)
    return key


def test_deactivating_signing_key_is_refused(iam, bob_signs_with_profile, proxy):
    key = bob_signs_with_profile

    result = run("deactivate", "--profile", "work", "--user", "Bob", key.access_key_id)

    assert result.exit_code == 5
    assert "is the key this command is signed with" in result.stderr
    assert "locks these credentials" in result.stderr
    assert "pass --force" in result.stderr
    assert "UpdateAccessKey" not in proxy.actions()
    assert key_status(iam, "Bob") == {key.access_key_id: "Active"}


def test_deactivating_signing_key_with_force(iam, bob_signs_with_profile):
    key = bob_signs_with_profile

    result = run("deactivate", "--profile", "work", "--user", "Bob", key.access_key_id,
                 "--force", "--output", "json")

    assert result.exit_code == 0, result.stderr
    assert key_status(iam, "Bob") == {key.access_key_id: "Inactive"}
    assert json.loads(result.stdout)["After"][0]["Status"] == "Inactive"


def test_yes_does_not_override_lock_out(iam, bob_signs_with_profile):
    key = bob_signs_with_profile

    result = run("deactivate", "--profile", "work", "--user", "Bob", key.access_key_id, "--yes")

    assert result.exit_code == 5
    assert key_status(iam, "Bob") == {key.access_key_id: "Active"}


def test_missing_profile_exits_3():
    result = run("list", "--profile", "nope")

    assert result.exit_code == 3
    assert "nope" in result.stderr
    assert "could not be found" in result.stderr


def test_no_credentials_exits_4(monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    result = run("list", "--user", "Bob")

    assert result.exit_code == 4
    assert "credentials" in result.stderr


def test_access_denied_exits_4(iam, moto_server, monkeypatch):
    key = create_user_with_keys(iam, "Bob", 1)[0]
    sign_as(monkeypatch, key)
    moto_server.auth_checking(enabled=True)

    result = run("list", "--user", "Alice")

    assert result.exit_code == 4
    assert "AccessDenied" in result.stderr


def test_unknown_signing_key_exits_4(iam, moto_server):
    create_user_with_keys(iam, "Bob", 1)
    moto_server.auth_checking(enabled=True)

    result = run("list", "--user", "Bob")

    assert result.exit_code == 4
    assert "InvalidClientTokenId" in result.stderr


def test_admin_with_auth_deactivates(iam, moto_server, monkeypatch):
    admin = create_user_with_keys(iam, "admin", 1)[0]
    grant_admin(iam, "admin")
    bob = create_user_with_keys(iam, "Bob", 1)[0]
    sign_as(monkeypatch, admin)
    moto_server.auth_checking(enabled=True)

    result = run("deactivate", "--user", "Bob", bob.access_key_id)

    assert result.exit_code == 0, result.stderr
    moto_server.auth_checking(enabled=False)
    assert key_status(iam, "Bob") == {bob.access_key_id: "Inactive"}


def test_verbose_logs_calls_without_secret(iam, monkeypatch):
    key = create_user_with_keys(iam, "Bob", 1)[0]
    sign_as(monkeypatch, key)

    result = run("deactivate", "--verbose", "--user", "Bob", key.access_key_id, "--force")

    assert result.exit_code == 0, result.stderr
    assert "IAM UpdateAccessKey: HTTP 200, request ID" in result.stderr
    assert "IAM ListAccessKeys: sending (attempt 1" in result.stderr
    assert key.secret_access_key not in result.stderr
    assert key.secret_access_key not in result.stdout


def test_verbose_and_quiet_conflict():
    result = run("list", "--verbose", "--quiet")

    assert result.exit_code == 2
    assert "--verbose and --quiet" in result.stderr


def test_quiet_prints_nothing_on_success(iam):
    key = create_user_with_keys(iam, "Bob", 1)[0]

    result = run("deactivate", "--quiet", "--user", "Bob", key.access_key_id)

    assert result.exit_code == 0
    assert result.stderr == ""
    assert result.stdout == ""
    assert key_status(iam, "Bob") == {key.access_key_id: "Inactive"}


@pytest.mark.parametrize("command", ["list", "activate", "deactivate"])
def test_every_command_has_help(command):
    result = run(command, "--help")

    assert result.exit_code == 0
    assert "Usage: keyrot" in result.stdout
    assert "--profile" in result.stdout
    assert "--endpoint-url" in result.stdout


def test_no_arguments_prints_help():
    result = run()

    assert result.exit_code == 0
    assert "Commands:" in result.stdout


def test_unknown_command_exits_2():
    result = run("nope")

    assert result.exit_code == 2
    assert result.stderr == "keyrot: error: no such command 'nope'; see 'keyrot --help'\n"


def test_option_before_command_hints_order():
    result = run("--output", "json", "list")

    assert result.exit_code == 2
    assert result.stderr == (
        "keyrot: error: no such option '--output'; options go after the command name, "
        "as in: keyrot list --output ...\n"
    )


def test_service_endpoint_variable_wins(iam, monkeypatch, moto_server):
    key = create_user_with_keys(iam, "Bob", 1)[0]
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ENDPOINT_URL_IAM", moto_server.url)

    result = run("list", "--user", "Bob", "--output", "text")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.split("\t")[1] == key.access_key_id


def test_profile_from_aws_profile_variable(iam, monkeypatch, aws_environment):
    key = create_user_with_keys(iam, "Bob", 1)[0]
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    write_profile(aws_environment, "work", key)
    monkeypatch.setenv("AWS_PROFILE", "work")

    result = run("list", "--output", "json")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["UserName"] == "Bob"


def test_root_caller_sends_no_user_name(iam, monkeypatch, proxy):
    first, second = create_user_with_keys(iam, "Bob", 2)
    sign_as(monkeypatch, first)
    proxy.add_rule(
        "GetCallerIdentity",
        times=None,
        rewrite=lambda body: re.sub(rb"<Arn>[^<]*</Arn>", ROOT_ARN_ELEMENT, body),
    )

    result = run("deactivate", second.access_key_id, "--output", "json")

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["UserName"] == "root"
    assert document["Caller"]["Arn"] == "arn:aws:iam::123456789012:root"
    iam_requests = [request for request in proxy.requests if request.action != "GetCallerIdentity"]
    assert [request.action for request in iam_requests][:1] == ["ListAccessKeys"]
    assert all("UserName" not in request.params for request in iam_requests)


def test_partial_failure_names_finish_and_undo(iam, proxy):
    first, second = create_user_with_keys(iam, "Bob", 2)
    proxy.add_rule("UpdateAccessKey", times=None, error=(400, "InvalidInput", "injected"),
                   match=lambda request: request.params.get("AccessKeyId") == second.access_key_id)

    result = run("deactivate", "--user", "Bob", first.access_key_id, second.access_key_id)

    assert result.exit_code == 6
    assert f"set to Inactive: {first.access_key_id}" in result.stderr
    assert f"not changed: {second.access_key_id}" in result.stderr
    assert f"to finish: keyrot deactivate --user Bob {second.access_key_id}" in result.stderr
    assert f"to undo: keyrot activate --user Bob {first.access_key_id}" in result.stderr


def test_other_users_key_without_user_hints(iam, monkeypatch):
    bob = create_user_with_keys(iam, "Bob", 1)[0]
    alice = create_user_with_keys(iam, "Alice", 1)[0]
    sign_as(monkeypatch, bob)

    result = run("deactivate", alice.access_key_id)

    assert result.exit_code == 3
    assert f"access key {alice.access_key_id} not found for Bob" in result.stderr
    assert "pass --user NAME for another user's key" in result.stderr


@pytest.mark.parametrize("region", ["mars-1", "us-east-1x"])
def test_unknown_region_exits_2(proxy, region):
    result = run("list", "--user", "Bob", "--region", region)

    assert result.exit_code == 2
    assert f"invalid region {region!r}: no AWS partition has a region of that name" in result.stderr
    assert proxy.requests == []


def test_missing_profile_from_variable_named(monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "nosuch")

    result = run("list")

    assert result.exit_code == 3
    assert "load the AWS profile 'nosuch' failed" in result.stderr


def test_user_without_keys_says_so(iam):
    iam.create_user(UserName="Alice")

    result = run("deactivate", "--user", "Alice", "AKIAIOSFODNN7EXAMPLE")

    assert result.exit_code == 3
    assert "not found for Alice; that user has no access keys" in result.stderr


def test_table_to_pipe_has_no_trailing_spaces(iam):
    create_user_with_keys(iam, "Bob", 2)

    result = run("list", "--user", "Bob")

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any("Access key ID" in line for line in lines)
    assert all(line == line.rstrip() for line in lines)


def test_unparsable_profile_file_names_line(aws_environment, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    (aws_environment / "credentials").write_text(
        "[work]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = x\n"
        "[work]\nregion = us-east-1\n"
    )

    result = run("list", "--profile", "work")

    assert result.exit_code == 2
    assert "line 4: section [work] appears twice (first on line 1)" in result.stderr


def test_aws_region_variable_picks_partition(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "us-east-1x")

    result = run("list", "--user", "Bob")

    assert result.exit_code == 2
    assert "invalid region 'us-east-1x'" in result.stderr


def test_assumed_role_caller_needs_user(iam, monkeypatch, proxy):
    key = create_user_with_keys(iam, "Bob", 1)[0]
    sign_as(monkeypatch, key)
    proxy.add_rule(
        "GetCallerIdentity",
        times=None,
        rewrite=lambda body: re.sub(
            rb"<Arn>[^<]*</Arn>",
            b"<Arn>arn:aws:sts::123456789012:assumed-role/admin/alice</Arn>",
            body,
        ),
    )

    result = run("list")

    assert result.exit_code == 2
    assert "assumed-role/admin/alice is not an IAM user" in result.stderr
    assert "pass --user NAME" in result.stderr
    assert "ListAccessKeys" not in proxy.actions()


def test_role_profiles_source_key_is_protected(iam, monkeypatch, aws_environment):
    alice = create_user_with_keys(iam, "alice", 1)[0]
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    write_profile(aws_environment, "alice", alice)
    (aws_environment / "config").write_text(
        "[default]\nregion = us-east-1\n\n[profile admin]\n"
        "role_arn = arn:aws:iam::123456789012:role/admin\nsource_profile = alice\n"
    )

    result = run("deactivate", "--profile", "admin", "--user", "alice", alice.access_key_id)

    assert result.exit_code == 5
    assert f"access key {alice.access_key_id} is the key this command is signed with" \
        in result.stderr
    assert key_status(iam, "alice") == {alice.access_key_id: "Active"}


def test_misspelt_option_hint_punctuation():
    result = run("list", "--usr", "Bob")

    assert result.exit_code == 2
    assert "(Did you mean" in result.stderr
    assert "?) See 'keyrot list --help'." in result.stderr
    assert "?;" not in result.stderr
