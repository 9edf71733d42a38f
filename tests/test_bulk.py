"""deactivate and delete with --all-users: plan, confirmation, exclusions, the signing key,
partial failure, and several accounts."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from conftest import create_user_with_keys, run, sign_as
from fleet_support import (
    HOME_ACCOUNT,
    KEYROT,
    OTHER_ACCOUNT,
    ROLE_NAME,
    THIRD_ACCOUNT,
    account_iam,
    keyrot_on_terminal,
    report_rewrite,
)

from keyrot.fleet.bulk import BulkRequest, plan_account
from keyrot.fleet.policy import KeyPolicy
from keyrot.fleet.progress import SilentProgress
from keyrot.iam import ConnectionSettings, connect


def statuses(iam, *user_names):
    found = {}
    for user_name in user_names:
        for key in iam.list_access_keys(UserName=user_name)["AccessKeyMetadata"]:
            found[key["AccessKeyId"]] = key["Status"]
    return found


@pytest.fixture
def seeded(iam):
    """Bob has one key, Carol two, svc-build and svc-deploy one each, Alice none."""
    create_user_with_keys(iam, "Alice", 0)
    return {
        "Bob": create_user_with_keys(iam, "Bob", 1),
        "Carol": create_user_with_keys(iam, "Carol", 2),
        "svc-build": create_user_with_keys(iam, "svc-build", 1),
        "svc-deploy": create_user_with_keys(iam, "svc-deploy", 1),
    }


ALL_USERS = ("Bob", "Carol", "svc-build", "svc-deploy")


def bulk_json(*arguments):
    result = run(*arguments, "--output", "json")
    return result, json.loads(result.stdout) if result.stdout else None


def test_dry_run_changes_nothing(iam, seeded, proxy):
    result = run("deactivate", "--all-users", "--older-than", "0", "--dry-run")

    assert result.exit_code == 0, result.stderr
    assert "UpdateAccessKey" not in proxy.actions()
    assert set(statuses(iam, *ALL_USERS).values()) == {"Active"}
    assert "Plan: deactivate keys older than 0 days (dry run)" in result.stdout
    assert seeded["Carol"][1].access_key_id in result.stdout
    assert "planned 5" in result.stderr


def test_no_terminal_without_yes_exits_5(iam, seeded, proxy):
    result = run("deactivate", "--all-users", "--older-than", "0")

    assert result.exit_code == 5
    assert "no terminal to ask on" in result.stderr
    assert "Pass --yes" in result.stderr
    assert "UpdateAccessKey" not in proxy.actions()
    assert set(statuses(iam, *ALL_USERS).values()) == {"Active"}


def test_yes_deactivates_every_match(iam, seeded):
    result, document = bulk_json("deactivate", "--all-users", "--older-than", "0", "--yes")

    assert result.exit_code == 0, result.stderr
    assert set(statuses(iam, *ALL_USERS).values()) == {"Inactive"}
    assert document["Summary"] == {"done": 5}
    assert document["Action"] == "deactivate"
    assert document["DryRun"] is False
    assert document["Policy"] == {"OlderThanDays": 0, "UnusedForDays": None}
    record = document["AccessKeys"][0]
    assert record["Status"] == "Inactive"
    assert record["Result"] == "done"
    assert record["Detail"] == "deactivated"
    assert record["Account"] == HOME_ACCOUNT


@pytest.mark.parametrize(("answer", "exit_code", "status"), [("y\n", 0, "Inactive"),
                                                             ("n\n", 5, "Active")])
def test_terminal_prompt(iam, seeded, answer, exit_code, status):
    result = keyrot_on_terminal(answer, "deactivate", "--all-users", "--older-than", "0")

    assert result.returncode == exit_code, result.stderr
    assert "Deactivate 5 access keys in 1 account?" in result.stderr
    assert "Plan: deactivate" in result.stdout
    assert set(statuses(iam, *ALL_USERS).values()) == {status}


def test_exclusions_by_name_and_pattern(iam, seeded):
    result, document = bulk_json("deactivate", "--all-users", "--older-than", "0", "--yes",
                                 "--exclude-user", "Bob", "--exclude-user", "svc-*")

    assert result.exit_code == 0, result.stderr
    changed = statuses(iam, *ALL_USERS)
    assert changed[seeded["Bob"][0].access_key_id] == "Active"
    assert changed[seeded["svc-build"][0].access_key_id] == "Active"
    assert changed[seeded["svc-deploy"][0].access_key_id] == "Active"
    assert {changed[key.access_key_id] for key in seeded["Carol"]} == {"Inactive"}
    skipped = [key for key in document["AccessKeys"] if key["Result"] == "skipped"]
    assert sorted(key["UserName"] for key in skipped) == ["Bob", "svc-build", "svc-deploy"]
    assert "excluded by --exclude-user svc-*" in {key["Detail"] for key in skipped}


def test_exclusion_with_a_set_matches_ignoring_case(iam, seeded):
    result, document = bulk_json("deactivate", "--all-users", "--older-than", "0", "--yes",
                                 "--exclude-user", "SVC-[a-c]uild", "--exclude-user", "[!c]OB")

    assert result.exit_code == 0, result.stderr
    changed = statuses(iam, *ALL_USERS)
    assert changed[seeded["svc-build"][0].access_key_id] == "Active"
    assert changed[seeded["svc-deploy"][0].access_key_id] == "Inactive"
    assert changed[seeded["Bob"][0].access_key_id] == "Active"
    assert document["UnmatchedExclusions"] == []


@pytest.mark.parametrize("pattern", ["bad name", "svc-[1-3", "svc/*", "svc-[]"])
def test_invalid_exclusion_pattern_names_the_rule(proxy, pattern):
    result = run("deactivate", "--all-users", "--older-than", "1", "--exclude-user", pattern)

    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert f"invalid value for --exclude-user: invalid pattern {pattern!r}" in message
    assert "plus the wildcards * (any characters), ? (one character), [SET] and [!SET]" in message
    assert proxy.requests == []


@pytest.mark.parametrize("extra", [["--yes"], ["--dry-run"]])
def test_exclusion_that_matches_no_user_refuses_the_run(iam, seeded, extra):
    result, document = bulk_json("deactivate", "--all-users", "--older-than", "0", *extra,
                                 "--exclude-user", "svc-*", "--exclude-user", "break-glas-*")

    assert result.exit_code == 2, result.stderr
    assert result.stderr.splitlines()[0] == (
        "keyrot: error: --exclude-user break-glas-* matched no user in any account, so it "
        "would protect no key; nothing was deactivated. Fix the pattern (names match ignoring "
        "case) or drop it"
    )
    assert "no user matched: break-glas-*" in result.stderr
    assert set(statuses(iam, *ALL_USERS).values()) == {"Active"}
    assert document["UnmatchedExclusions"] == ["break-glas-*"]
    assert document["Summary"] == {"planned": 3, "skipped": 2}


def test_unmatched_exclusion_errors_in_plan(iam, seeded):
    result = run("delete", "--all-users", "--older-than", "0", "--dry-run",
                 "--exclude-user", "nobody")

    assert result.exit_code == 2
    assert "Plan: delete keys older than 0 days (refused)" in result.stdout
    assert "--exclude-user nobody matched no user in any account" in result.stderr


def test_several_unmatched_exclusions_are_all_named(iam, seeded):
    result = run("deactivate", "--all-users", "--older-than", "0", "--yes",
                 "--exclude-user", "nobody", "--exclude-user", "x*")

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "keyrot: error: --exclude-user nobody, --exclude-user x* matched no user in any "
        "account, so they would protect no key; nothing was deactivated. Fix the patterns "
        "(names match ignoring case) or drop them",
        "  no user matched: nobody",
        "  no user matched: x*",
    ]
    assert set(statuses(iam, *ALL_USERS).values()) == {"Active"}


def test_exclude_user_help_describes_patterns_and_case():
    result = run("delete", "--help")

    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "a user name or a shell pattern with *, ?, [SET] or [!SET]" in text
    assert "Names match ignoring case" in text
    assert "A pattern that matches no user stops the run before any change." in text


def test_signing_key_is_skipped(iam, seeded, monkeypatch, proxy):
    bob_key = seeded["Bob"][0]
    sign_as(monkeypatch, bob_key)

    result, document = bulk_json("deactivate", "--all-users", "--older-than", "0", "--yes")

    assert result.exit_code == 0, result.stderr
    assert statuses(iam, "Bob") == {bob_key.access_key_id: "Active"}
    bob = next(key for key in document["AccessKeys"] if key["UserName"] == "Bob")
    assert bob["Result"] == "skipped"
    assert "signs these requests" in bob["Detail"]
    updated = [request.params["AccessKeyId"] for request in proxy.requests
               if request.action == "UpdateAccessKey"]
    assert bob_key.access_key_id not in updated
    assert len(updated) == 4


def test_inactive_match_is_unchanged(iam, seeded, proxy):
    carol = seeded["Carol"][0].access_key_id
    iam.update_access_key(UserName="Carol", AccessKeyId=carol, Status="Inactive")

    result, document = bulk_json("deactivate", "--all-users", "--older-than", "0", "--yes")

    assert result.exit_code == 0, result.stderr
    assert document["Summary"] == {"done": 4, "unchanged": 1}
    updated = [request.params["AccessKeyId"] for request in proxy.requests
               if request.action == "UpdateAccessKey"]
    assert carol not in updated


def test_no_match_changes_nothing(iam, seeded, proxy):
    result = run("deactivate", "--all-users", "--older-than", "90", "--unused-for", "30",
                 "--yes")

    assert result.exit_code == 0, result.stderr
    assert "no access key matched" in result.stderr
    assert "UpdateAccessKey" not in proxy.actions()
    assert "ListAccessKeys" not in proxy.actions()


def test_partial_failure_exits_6(iam, seeded, proxy):
    failing = seeded["Carol"][1].access_key_id
    proxy.add_rule("UpdateAccessKey", times=None, error=(403, "AccessDenied", "denied"),
                   match=lambda request: request.params.get("AccessKeyId") == failing)

    result, document = bulk_json("deactivate", "--all-users", "--older-than", "0", "--yes")

    assert result.exit_code == 6
    assert document["Summary"] == {"done": 4, "failed": 1}
    assert f"failed: {failing} of Carol in account {HOME_ACCOUNT}" in result.stderr
    assert "AccessDenied" in result.stderr
    assert statuses(iam, "Carol")[failing] == "Active"
    assert statuses(iam, "Bob")[seeded["Bob"][0].access_key_id] == "Inactive"


def test_every_action_failing_exits_with_its_code(iam, seeded, proxy):
    proxy.fail("UpdateAccessKey", 403, "AccessDenied", "denied", times=None)

    result, document = bulk_json("deactivate", "--all-users", "--older-than", "0", "--yes")

    assert result.exit_code == 4
    assert document["Summary"] == {"failed": 5}
    assert result.stderr.count("\n  failed: ") == 5
    assert set(statuses(iam, *ALL_USERS).values()) == {"Active"}


def test_throttling_is_retried(iam, seeded, proxy):
    proxy.fail("UpdateAccessKey", 400, "Throttling", "Rate exceeded", times=2)

    result = run("deactivate", "--all-users", "--older-than", "0", "--yes")

    assert result.exit_code == 0, result.stderr
    assert proxy.actions().count("UpdateAccessKey") == 7
    assert set(statuses(iam, *ALL_USERS).values()) == {"Inactive"}


def test_listing_failure_is_reported(iam, seeded, proxy):
    proxy.add_rule("ListAccessKeys", times=None, error=(500, "ServiceFailure", "broken"),
                   match=lambda request: request.params.get("UserName") == "Carol")

    result, document = bulk_json("deactivate", "--all-users", "--older-than", "0", "--yes")

    assert result.exit_code == 6
    carol = [key for key in document["AccessKeys"] if key["UserName"] == "Carol"]
    assert [key["Result"] for key in carol] == ["failed"]
    assert "list access keys of user Carol failed" in result.stderr


def test_stale_report_last_use_is_rechecked(iam, seeded, proxy):
    # The report claims Bob's key was last used in 2020; IAM says it was never used, and the
    # key is minutes old, so it has not been unused for 30 days.
    def stale(text):
        lines = text.splitlines(keepends=True)
        edited = [line.replace(",N/A,not_supported", ",2020-01-01T00:00:00+00:00,not_supported", 1)
                  if line.startswith("Bob,") else line for line in lines]
        return "".join(edited)

    proxy.add_rule("GetCredentialReport", rewrite=report_rewrite(stale), times=None)

    result = run("deactivate", "--all-users", "--unused-for", "30", "--yes")

    assert result.exit_code == 0, result.stderr
    assert "GetAccessKeyLastUsed" in proxy.actions()
    assert "UpdateAccessKey" not in proxy.actions()
    assert statuses(iam, "Bob") == {seeded["Bob"][0].access_key_id: "Active"}


def test_root_keys_are_skipped(iam, seeded, proxy):
    root_line = (
        "<root_account>,arn:aws:iam::123456789012:root,2020-01-01T00:00:00+00:00,not_supported,"
        "N/A,not_supported,not_supported,false,true,2021-03-04T05:06:07+00:00,N/A,N/A,N/A,"
        "false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n"
    )
    proxy.add_rule("GetCredentialReport", rewrite=report_rewrite(lambda text: text + root_line),
                   times=None)

    result, document = bulk_json("deactivate", "--all-users", "--older-than", "0", "--yes")

    assert result.exit_code == 0, result.stderr
    root = [key for key in document["AccessKeys"] if key["UserName"] == "<root_account>"]
    assert [key["Result"] for key in root] == ["skipped"]
    assert "root" in root[0]["Detail"]


def test_delete_all_users_keeps_active_keys(iam, seeded):
    carol = seeded["Carol"][0].access_key_id
    iam.update_access_key(UserName="Carol", AccessKeyId=carol, Status="Inactive")

    result, document = bulk_json("delete", "--all-users", "--older-than", "0", "--yes")

    assert result.exit_code == 0, result.stderr
    assert carol not in statuses(iam, "Carol")
    assert len(statuses(iam, *ALL_USERS)) == 4
    assert document["Summary"] == {"done": 1, "skipped": 4}
    skipped = {key["Detail"] for key in document["AccessKeys"] if key["Result"] == "skipped"}
    assert skipped == {"Active; deactivate it first, or pass --force to delete it"}


def test_delete_all_users_force(iam, seeded, monkeypatch):
    sign_as(monkeypatch, seeded["Bob"][0])

    result, document = bulk_json("delete", "--all-users", "--older-than", "0", "--yes",
                                 "--force")

    assert result.exit_code == 0, result.stderr
    assert statuses(iam, *ALL_USERS) == {seeded["Bob"][0].access_key_id: "Active"}
    assert document["Summary"] == {"done": 4, "skipped": 1}


def test_two_accounts(moto_server, proxy):
    olga = create_user_with_keys(account_iam(moto_server.url, OTHER_ACCOUNT), "Olga", 1)
    theo = create_user_with_keys(account_iam(moto_server.url, THIRD_ACCOUNT), "Theo", 2)

    result, document = bulk_json("deactivate", "--all-users", "--older-than", "0", "--yes",
                                 "--accounts", f"{OTHER_ACCOUNT},{THIRD_ACCOUNT}",
                                 "--role-name", ROLE_NAME)

    assert result.exit_code == 0, result.stderr
    assert document["Summary"] == {"done": 3}
    accounts = {key["AccessKeyId"]: key["Account"] for key in document["AccessKeys"]}
    assert accounts == {olga[0].access_key_id: OTHER_ACCOUNT,
                        theo[0].access_key_id: THIRD_ACCOUNT,
                        theo[1].access_key_id: THIRD_ACCOUNT}
    assert set(statuses(account_iam(moto_server.url, THIRD_ACCOUNT), "Theo").values()) == {
        "Inactive"}
    sessions = {request.params["RoleSessionName"] for request in proxy.requests
                if request.action == "AssumeRole"}
    assert sessions == {"keyrot-deactivate"}


def test_unassumable_account_is_skipped(moto_server, proxy):
    olga = create_user_with_keys(account_iam(moto_server.url, OTHER_ACCOUNT), "Olga", 1)
    proxy.add_rule(
        "AssumeRole", times=None, error=(403, "AccessDenied", "not authorized to assume"),
        match=lambda request: THIRD_ACCOUNT in request.params.get("RoleArn", ""),
    )

    result, document = bulk_json("deactivate", "--all-users", "--older-than", "0", "--yes",
                                 "--accounts", f"{OTHER_ACCOUNT},{THIRD_ACCOUNT}",
                                 "--role-name", ROLE_NAME)

    assert result.exit_code == 6
    assert document["Summary"] == {"done": 1}
    assert [failure["Account"] for failure in document["FailedAccounts"]] == [THIRD_ACCOUNT]
    assert f"skipped account {THIRD_ACCOUNT}" in result.stderr
    assert ("deactivate --all-users finished with 0 failed keys and 1 skipped account; run it "
            "again to retry them") in result.stderr
    iam_other = account_iam(moto_server.url, OTHER_ACCOUNT)
    assert statuses(iam_other, "Olga") == {olga[0].access_key_id: "Inactive"}


def test_unread_accounts_not_blamed_on_exclusion(moto_server, proxy):
    proxy.add_rule("AssumeRole", times=None, error=(403, "AccessDenied", "not authorized"))

    result = run("deactivate", "--all-users", "--older-than", "0", "--yes",
                 "--exclude-user", "break-glass-*", "--accounts", THIRD_ACCOUNT,
                 "--role-name", ROLE_NAME)

    assert result.exit_code == 4
    assert ("deactivate --all-users finished with 0 failed keys and 1 skipped account"
            in result.stderr)
    assert "matched no user" not in result.stderr


def test_table_shows_account_column(moto_server):
    create_user_with_keys(account_iam(moto_server.url, OTHER_ACCOUNT), "Olga", 1)

    result = run("deactivate", "--all-users", "--older-than", "0", "--dry-run",
                 "--accounts", OTHER_ACCOUNT, "--role-name", ROLE_NAME)

    assert result.exit_code == 0, result.stderr
    assert re.search(rf"{OTHER_ACCOUNT}\s+Olga", result.stdout)


def test_caption_explains_short_labels(moto_server, monkeypatch):
    create_user_with_keys(account_iam(moto_server.url, OTHER_ACCOUNT), "Olga", 1)
    monkeypatch.setenv("COLUMNS", "80")

    result = run("deactivate", "--all-users", "--older-than", "0", "--unused-for", "0",
                 "--dry-run", "--accounts", OTHER_ACCOUNT, "--role-name", ROLE_NAME)

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert re.search(rf"{OTHER_ACCOUNT}\s+Olga\s+\S+\s+0d\s+never\s+old,", result.stdout)
    assert ("Breaks: old = older-than, unused = unused-for (as in JSON and text output)"
            in [line.strip() for line in lines])


@pytest.mark.parametrize("arguments, message", [
    (["deactivate", "--all-users", "--older-than", "1", "--user", "Bob"],
     "cannot be combined with --user"),
    (["deactivate", "--all-users", "--older-than", "1", "AKIAIOSFODNN7EXAMPLE"],
     "cannot be combined with --user or access key IDs"),
    (["deactivate", "--older-than", "1"], "need --all-users"),
    (["deactivate", "--all-users"], "needs --older-than DAYS, --unused-for DAYS, or both"),
    (["deactivate", "--all-users", "--older-than", "1", "--force"], "--force does not apply"),
    (["deactivate", "--all-users", "--older-than", "-1"], "-1"),
    (["deactivate", "--all-users", "--older-than", "1", "--exclude-user", "bad name"],
     "--exclude-user"),
    (["deactivate"], "missing ACCESS_KEY_ID"),
    (["delete", "--all-users", "--unused-for", "1", "--user", "Bob"],
     "cannot be combined with --user"),
    (["delete"], "missing ACCESS_KEY_ID"),
])
def test_usage_errors_exit_2(proxy, arguments, message):
    result = run(*arguments)

    assert result.exit_code == 2
    assert message in result.stderr
    assert proxy.requests == []


def test_older_than_help_documents_boundary():
    result = run("deactivate", "--help")

    assert result.exit_code == 0
    assert "not one a second younger" in " ".join(result.stdout.split())


def test_bulk_runs_use_adaptive_retries(monkeypatch):
    adaptive = connect(ConnectionSettings(default_retry_mode="adaptive"))
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")
    configured = connect(ConnectionSettings(default_retry_mode="adaptive"))

    assert adaptive.iam_client.meta.config.retries["mode"] == "adaptive"
    assert configured.iam_client.meta.config.retries["mode"] == "standard"


def plan_request(now):
    return BulkRequest(action="deactivate", policy=KeyPolicy(90, None), excluded_users=(),
                       include_active=False, now=now, workers=2, report_timeout=30)


def test_plan_selects_at_exact_day(iam):
    key = create_user_with_keys(iam, "Bob", 1)[0]
    listed = iam.list_access_keys(UserName="Bob")["AccessKeyMetadata"][0]
    created = listed["CreateDate"].astimezone(UTC).replace(microsecond=0)
    service = connect(ConnectionSettings())

    at_limit = plan_account(service, HOME_ACCOUNT, plan_request(created + timedelta(days=90)),
                            None, SilentProgress())
    before_limit = plan_account(
        service, HOME_ACCOUNT, plan_request(created + timedelta(days=90, seconds=-1)), None,
        SilentProgress(),
    )

    assert [(k.access_key_id, k.result) for k in at_limit.keys] == [(key.access_key_id,
                                                                      "planned")]
    assert before_limit.keys == []


def test_plan_now_defaults_to_clock(iam, seeded):
    _result, document = bulk_json("deactivate", "--all-users", "--older-than", "0", "--dry-run")

    now = datetime.fromisoformat(document["Now"])
    assert abs(now - datetime.now(UTC)) < timedelta(hours=1)
    assert document["DryRun"] is True
    assert {key["Result"] for key in document["AccessKeys"]} == {"planned"}


def test_interrupt_stops_remaining_keys(iam, seeded, proxy):
    release = threading.Event()
    held = proxy.add_rule("UpdateAccessKey", hold=release)
    process = subprocess.Popen(
        [KEYROT, "deactivate", "--all-users", "--older-than", "0", "--yes", "--concurrency", "1"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=os.environ.copy(),
    )
    try:
        assert held.arrived.wait(30)
        process.send_signal(signal.SIGINT)
        # Give the signal time to reach the waiting main thread before the request returns.
        time.sleep(0.5)
        release.set()
        _stdout, stderr = process.communicate(timeout=60)
    finally:
        release.set()
        if process.poll() is None:
            process.kill()

    assert process.returncode == 130, stderr
    assert "stopped after 1 of 5 keys" in stderr
    assert proxy.actions().count("UpdateAccessKey") == 1
    assert sorted(statuses(iam, *ALL_USERS).values()) == ["Active"] * 4 + ["Inactive"]
