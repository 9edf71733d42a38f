"""keyrot delete for named keys of one user."""

from __future__ import annotations

import json

import pytest
from conftest import FAKE_ACCESS_KEY_ID, FAKE_SECRET, create_user_with_keys, run, sign_as
from fleet_support import keyrot_on_terminal


def key_ids(iam, user_name):
    return [key["AccessKeyId"]
            for key in iam.list_access_keys(UserName=user_name)["AccessKeyMetadata"]]


def deactivated(iam, user_name, count):
    keys = create_user_with_keys(iam, user_name, count)
    for key in keys:
        iam.update_access_key(UserName=user_name, AccessKeyId=key.access_key_id,
                              Status="Inactive")
    return keys


def test_delete_inactive_key(iam):
    first, second = create_user_with_keys(iam, "Bob", 2)
    iam.update_access_key(UserName="Bob", AccessKeyId=first.access_key_id, Status="Inactive")

    result = run("delete", "--user", "Bob", first.access_key_id)

    assert result.exit_code == 0, result.stderr
    assert key_ids(iam, "Bob") == [second.access_key_id]
    assert "Bob: before" in result.stdout
    assert "Bob: after" in result.stdout
    assert f"* {first.access_key_id}" in result.stdout
    assert f"deleted {first.access_key_id}" in result.stderr


def test_delete_active_key_exits_5(iam, proxy):
    key = create_user_with_keys(iam, "Bob", 1)[0]

    result = run("delete", "--user", "Bob", key.access_key_id)

    assert result.exit_code == 5
    assert "is Active" in result.stderr
    assert f"keyrot deactivate --user Bob {key.access_key_id}" in result.stderr
    assert "--force" in result.stderr
    assert "DeleteAccessKey" not in proxy.actions()
    assert key_ids(iam, "Bob") == [key.access_key_id]


def test_delete_active_key_with_force(iam):
    key = create_user_with_keys(iam, "Bob", 1)[0]

    result = run("delete", "--user", "Bob", "--force", key.access_key_id)

    assert result.exit_code == 0, result.stderr
    assert key_ids(iam, "Bob") == []


def test_delete_dry_run(iam, proxy):
    key = deactivated(iam, "Bob", 1)[0]

    result = run("delete", "--user", "Bob", "--dry-run", key.access_key_id)

    assert result.exit_code == 0, result.stderr
    assert "DeleteAccessKey" not in proxy.actions()
    assert key_ids(iam, "Bob") == [key.access_key_id]
    assert "would delete (dry run)" in result.stdout
    assert f"would delete {key.access_key_id}" in result.stderr


def test_delete_json_document(iam):
    first, second = deactivated(iam, "Bob", 2)

    result = run("delete", "--user", "Bob", first.access_key_id, "--output", "json")

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert list(document) == ["UserName", "Action", "DryRun", "Before", "After", "Changed"]
    assert document["Action"] == "delete"
    assert document["Changed"] == [first.access_key_id]
    assert [key["AccessKeyId"] for key in document["Before"]] == [first.access_key_id,
                                                                   second.access_key_id]
    assert [key["AccessKeyId"] for key in document["After"]] == [second.access_key_id]
    assert "LastUsedDate" in document["After"][0]


def test_delete_text_output(iam):
    first, second = deactivated(iam, "Bob", 2)

    result = run("delete", "--user", "Bob", first.access_key_id, "--output", "text")

    assert result.exit_code == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [(row[1], row[-1]) for row in rows] == [(first.access_key_id, "deleted"),
                                                   (second.access_key_id, "kept")]


def test_delete_unknown_key_exits_3(iam, proxy):
    deactivated(iam, "Bob", 1)

    result = run("delete", "--user", "Bob", "AKIAIOSFODNN7EXAMPLE")

    assert result.exit_code == 3
    assert "AKIAIOSFODNN7EXAMPLE not found for Bob" in result.stderr
    assert "DeleteAccessKey" not in proxy.actions()


def test_delete_partial_failure_exits_6(iam, proxy):
    first, second = deactivated(iam, "Bob", 2)
    proxy.add_rule("DeleteAccessKey", times=None, error=(500, "ServiceFailure", "broken"),
                   match=lambda request: request.params.get("AccessKeyId") ==
                   second.access_key_id)

    result = run("delete", "--user", "Bob", first.access_key_id, second.access_key_id)

    assert result.exit_code == 6
    assert f"deleted: {first.access_key_id}" in result.stderr
    assert f"not deleted: {second.access_key_id}" in result.stderr
    assert f"to finish: keyrot delete --user Bob --force {second.access_key_id}" in result.stderr
    assert key_ids(iam, "Bob") == [second.access_key_id]


def test_first_delete_failing_exits_1(iam, proxy):
    key = deactivated(iam, "Bob", 1)[0]
    proxy.fail("DeleteAccessKey", 500, "ServiceFailure", "broken", times=None)

    result = run("delete", "--user", "Bob", key.access_key_id)

    assert result.exit_code == 1
    assert "ServiceFailure" in result.stderr
    assert key_ids(iam, "Bob") == [key.access_key_id]


def test_signing_key_deleted_last(iam, monkeypatch, proxy):
    signing, other = create_user_with_keys(iam, "Bob", 2)
    sign_as(monkeypatch, signing)

    result = run("delete", "--force", signing.access_key_id, other.access_key_id)

    assert result.exit_code == 0, result.stderr
    deleted = [request.params["AccessKeyId"] for request in proxy.requests
               if request.action == "DeleteAccessKey"]
    assert deleted == [other.access_key_id, signing.access_key_id]
    assert "signs these requests" in result.stderr
    assert key_ids(iam, "Bob") == []


def test_signing_key_without_force_or_terminal_exits_5(iam, monkeypatch, proxy):
    signing = create_user_with_keys(iam, "Bob", 1)[0]
    sign_as(monkeypatch, signing)

    result = run("delete", signing.access_key_id)

    assert result.exit_code == 5
    assert result.stderr.splitlines()[0] == (
        f"keyrot: error: access key {signing.access_key_id} is the key this command is signed "
        "with; deleting it locks these credentials (and any profile that holds them) out of "
        "AWS for good. Nothing was deleted; pass --force to delete it anyway"
    )
    assert "DeleteAccessKey" not in proxy.actions()
    assert key_ids(iam, "Bob") == [signing.access_key_id]


@pytest.mark.parametrize(("answer", "exit_code", "left"), [("y\n", 0, 0), ("n\n", 5, 1)])
def test_signing_key_asks_on_a_terminal(iam, monkeypatch, answer, exit_code, left):
    signing = create_user_with_keys(iam, "Bob", 1)[0]
    sign_as(monkeypatch, signing)

    result = keyrot_on_terminal(answer, "delete", signing.access_key_id)

    assert result.returncode == exit_code, result.stderr
    assert "Delete it anyway? [y/N]" in result.stderr
    assert len(key_ids(iam, "Bob")) == left


def test_active_key_hint_keeps_profile_and_user(iam, monkeypatch, tmp_path):
    key = create_user_with_keys(iam, "Bob", 1)[0]
    credentials = tmp_path / "aws" / "credentials"
    credentials.write_text(f"[ivan]\naws_access_key_id = {FAKE_ACCESS_KEY_ID}\n"
                           f"aws_secret_access_key = {FAKE_SECRET}\n")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    result = run("delete", "--profile", "ivan", "--user", "Bob", key.access_key_id)

    assert result.exit_code == 5
    assert (f"Deactivate it first (keyrot deactivate --profile ivan --user Bob "
            f"{key.access_key_id})") in result.stderr
    assert key_ids(iam, "Bob") == [key.access_key_id]


def test_force_help_covers_the_signing_key():
    result = run("delete", "--help")

    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "It also allows deleting the key that signs the request" in text
