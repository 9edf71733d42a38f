"""keyrot audit: the credential report, the policy, key ID look-ups and several accounts."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import create_user_with_keys, run
from fleet_support import (
    HOME_ACCOUNT,
    OTHER_ACCOUNT,
    ROLE_NAME,
    THIRD_ACCOUNT,
    account_iam,
    generated_time_rewrite,
    report_rewrite,
    state_rewrite,
    use_key,
)

from keyrot.fleet.accounts import parse_account_ids, role_arn
from keyrot.fleet.audit import AuditRequest, audit_account
from keyrot.fleet.policy import KeyPolicy
from keyrot.fleet.progress import SilentProgress
from keyrot.iam import ConnectionSettings, connect

ROOT_LINE = (
    "<root_account>,arn:aws:iam::123456789012:root,2020-01-01T00:00:00+00:00,not_supported,"
    "2024-05-01T10:00:00+00:00,not_supported,not_supported,true,true,"
    "2021-03-04T05:06:07+00:00,no_information,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n"
)


@pytest.fixture
def seeded(iam, moto_server):
    """Alice has no key, Bob one, Carol two (one used), Dave one that is Inactive."""
    create_user_with_keys(iam, "Alice", 0)
    bob = create_user_with_keys(iam, "Bob", 1)
    carol = create_user_with_keys(iam, "Carol", 2)
    dave = create_user_with_keys(iam, "Dave", 1)
    iam.update_access_key(UserName="Dave", AccessKeyId=dave[0].access_key_id, Status="Inactive")
    use_key(moto_server.url, carol[1].access_key_id, carol[1].secret_access_key)
    return {"Bob": bob, "Carol": carol, "Dave": dave}


def audit_json(*arguments):
    result = run("audit", "--output", "json", *arguments)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_audit_lists_every_key(seeded):
    document = audit_json()

    records = document["AccessKeys"]
    assert [(key["UserName"], key["Status"]) for key in records] == [
        ("Bob", "Active"), ("Carol", "Active"), ("Carol", "Active"), ("Dave", "Inactive"),
    ]
    assert list(records[0]) == [
        "Account", "UserName", "AccessKeyId", "Status", "CreateDate", "LastUsedDate",
        "LastUsedService", "LastUsedRegion", "AgeDays", "State", "Breaches",
    ]
    assert {key["Account"] for key in records} == {HOME_ACCOUNT}
    assert [key["State"] for key in records] == ["compliant", "compliant", "compliant",
                                                 "inactive"]


def test_audit_reads_last_use_from_report(seeded):
    records = audit_json()["AccessKeys"]

    never_used, used = records[1], records[2]
    assert never_used["LastUsedDate"] is None
    assert used["LastUsedDate"].endswith("Z")
    # The report prints not_supported for the service and region of a key's last use.
    assert used["LastUsedService"] is None
    assert used["LastUsedRegion"] is None


def test_audit_summary_counts(seeded):
    summary = audit_json("--older-than", "0")["Summary"]

    assert summary["Users"] == 4
    assert summary["UsersWithoutKeys"] == 1
    assert summary["AccessKeys"] == 4
    assert summary["ByState"] == {"compliant": 0, "breaks-policy": 3, "inactive": 1}
    assert summary["ByBreach"] == {"older-than": 3, "unused-for": 0}
    assert summary["ByAgeBand"]["0-29 days"] == 4
    assert summary["ByAgeBand"]["365+ days"] == 0


def test_audit_without_breaches_lists_no_key_ids(seeded, proxy):
    records = audit_json()["AccessKeys"]

    assert [key["AccessKeyId"] for key in records] == [None, None, None, None]
    assert "ListAccessKeys" not in proxy.actions()
    assert "ListUsers" not in proxy.actions()
    assert "GetAccessKeyLastUsed" not in proxy.actions()


def test_audit_lists_ids_of_breaking_users(seeded, proxy):
    records = audit_json("--older-than", "0")["AccessKeys"]

    expected = [seeded["Bob"][0], *seeded["Carol"]]
    assert [key["AccessKeyId"] for key in records[:3]] == [k.access_key_id for k in expected]
    # Dave's only key is Inactive, so it breaks nothing and its ID is not looked up.
    assert records[3]["AccessKeyId"] is None
    listed = [request.params["UserName"] for request in proxy.requests
              if request.action == "ListAccessKeys"]
    assert sorted(listed) == ["Bob", "Carol"]


def test_audit_key_ids_all(seeded, proxy):
    records = audit_json("--key-ids", "all")["AccessKeys"]

    assert all(key["AccessKeyId"] for key in records)
    assert proxy.actions().count("ListAccessKeys") == 3


def test_audit_only_breaking(seeded):
    records = audit_json("--older-than", "0", "--only-breaking")["AccessKeys"]

    assert [key["UserName"] for key in records] == ["Bob", "Carol", "Carol"]


def test_audit_text_output(seeded):
    result = run("audit", "--older-than", "0", "--output", "text")

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    fields = lines[0].split("\t")
    assert fields[:4] == [HOME_ACCOUNT, "Bob", seeded["Bob"][0].access_key_id, "Active"]
    assert fields[8:] == ["0", "breaks-policy", "older-than"]
    assert lines[3].split("\t")[2] == "-"
    assert "3 of 4 access keys break the policy" in result.stderr


def test_audit_table_output(seeded):
    result = run("audit", "--older-than", "0")

    assert result.exit_code == 0, result.stderr
    assert seeded["Bob"][0].access_key_id in result.stdout
    assert "(not listed)" in result.stdout
    assert "Summary" in result.stdout
    assert "Access keys by age" in result.stdout
    assert re.search(rf"{seeded['Bob'][0].access_key_id}\s+Active\s+0d\s+never\s+old\n",
                     result.stdout)
    assert "Policy: old = older-than (as in JSON and text output)" in result.stdout


def test_audit_table_caption_only_on_breach(seeded):
    result = run("audit", "--older-than", "1000", "--unused-for", "1000")

    assert result.exit_code == 0, result.stderr
    assert "compliant" in result.stdout
    assert "as in JSON and text output" not in result.stdout


def test_audit_empty_account():
    document = audit_json()

    assert document["AccessKeys"] == []
    assert document["Summary"]["Users"] == 0


def test_audit_waits_for_report(seeded, proxy):
    proxy.add_rule("GenerateCredentialReport", rewrite=state_rewrite("INPROGRESS"), times=2)
    proxy.fail("GetCredentialReport", 410, "ReportInProgress", "Report is being generated")

    document = audit_json()

    assert len(document["AccessKeys"]) == 4
    assert proxy.actions().count("GenerateCredentialReport") == 4
    assert proxy.actions().count("GetCredentialReport") == 2


def test_audit_report_timeout_exits_1(seeded, proxy):
    proxy.add_rule("GenerateCredentialReport", rewrite=state_rewrite("INPROGRESS"), times=None)

    result = run("audit", "--report-timeout", "1")

    assert result.exit_code == 1
    assert "still being generated after 1 s" in result.stderr
    assert "--report-timeout" in result.stderr
    assert result.stdout == ""


def test_audit_shows_root_keys_without_id(seeded, proxy):
    proxy.add_rule("GetCredentialReport", rewrite=report_rewrite(lambda text: text + ROOT_LINE),
                   times=None)

    records = audit_json("--older-than", "90")["AccessKeys"]

    root = records[-1]
    assert root["UserName"] == "<root_account>"
    assert root["AccessKeyId"] is None
    assert root["CreateDate"] == "2021-03-04T05:06:07Z"
    assert root["LastUsedDate"] is None
    assert root["Breaches"] == ["older-than", "unused-for"]
    listed = [request.params.get("UserName") for request in proxy.requests
              if request.action == "ListAccessKeys"]
    assert listed == []


def test_audit_unreadable_report_exits_1(seeded, proxy):
    proxy.add_rule("GetCredentialReport",
                   rewrite=report_rewrite(lambda text: text.replace("N/A", "soon", 1)))

    result = run("audit")

    assert result.exit_code == 1
    assert "'soon'" in result.stderr
    assert "Traceback" not in result.stderr


def test_audit_access_denied_exits_4(seeded, proxy):
    proxy.fail("GenerateCredentialReport", 403, "AccessDenied", "not allowed", times=None)

    result = run("audit")

    assert result.exit_code == 4
    assert "generate the IAM credential report failed" in result.stderr


@pytest.fixture
def service():
    return connect(ConnectionSettings())


def boundary_request(now, older_than=None, unused_for=None):
    return AuditRequest(policy=KeyPolicy(older_than, unused_for), now=now, key_ids="breaking",
                        workers=2, report_timeout=30)


def created_at(iam, user_name):
    return iam.list_access_keys(UserName=user_name)["AccessKeyMetadata"][0]["CreateDate"]


def test_older_than_selects_at_exact_day(iam, service):
    create_user_with_keys(iam, "Bob", 1)
    # The report has whole seconds, so the boundary is measured from the second of creation.
    created = created_at(iam, "Bob").replace(microsecond=0)

    at_limit = audit_account(service, HOME_ACCOUNT,
                             boundary_request(created + timedelta(days=90), older_than=90),
                             SilentProgress())
    before_limit = audit_account(
        service, HOME_ACCOUNT,
        boundary_request(created + timedelta(days=90, seconds=-1), older_than=90),
        SilentProgress(),
    )

    assert at_limit.keys[0].breaches == ("older-than",)
    assert at_limit.keys[0].age_days == 90
    assert before_limit.keys[0].breaches == ()
    assert before_limit.keys[0].age_days == 89


def test_unused_for_counts_from_last_use(iam, service, moto_server):
    key = create_user_with_keys(iam, "Bob", 1)[0]
    use_key(moto_server.url, key.access_key_id, key.secret_access_key)
    used = iam.get_access_key_last_used(AccessKeyId=key.access_key_id)
    last_used = used["AccessKeyLastUsed"]["LastUsedDate"].replace(microsecond=0)

    at_limit = audit_account(service, HOME_ACCOUNT,
                             boundary_request(last_used + timedelta(days=30), unused_for=30),
                             SilentProgress())
    before_limit = audit_account(
        service, HOME_ACCOUNT,
        boundary_request(last_used + timedelta(days=30, seconds=-1), unused_for=30),
        SilentProgress(),
    )

    assert at_limit.keys[0].breaches == ("unused-for",)
    assert before_limit.keys[0].breaches == ()


def test_never_used_key_counts_from_creation(iam, service):
    create_user_with_keys(iam, "Bob", 1)
    created = created_at(iam, "Bob").replace(microsecond=0)

    at_limit = audit_account(service, HOME_ACCOUNT,
                             boundary_request(created + timedelta(days=30), unused_for=30),
                             SilentProgress())
    before_limit = audit_account(
        service, HOME_ACCOUNT,
        boundary_request(created + timedelta(days=30, seconds=-1), unused_for=30),
        SilentProgress(),
    )

    assert at_limit.keys[0].breaches == ("unused-for",)
    assert at_limit.keys[0].access_key_id is not None
    assert before_limit.keys[0].breaches == ()


def test_audit_two_accounts(moto_server):
    create_user_with_keys(account_iam(moto_server.url, OTHER_ACCOUNT), "Olga", 1)
    create_user_with_keys(account_iam(moto_server.url, THIRD_ACCOUNT), "Theo", 2)

    document = audit_json("--accounts", f"{OTHER_ACCOUNT},{THIRD_ACCOUNT}",
                          "--role-name", ROLE_NAME, "--older-than", "0")

    pairs = [(key["Account"], key["UserName"]) for key in document["AccessKeys"]]
    assert pairs == [(OTHER_ACCOUNT, "Olga"), (THIRD_ACCOUNT, "Theo"), (THIRD_ACCOUNT, "Theo")]
    assert all(key["AccessKeyId"] for key in document["AccessKeys"])
    assert [account["Account"] for account in document["Accounts"]] == [OTHER_ACCOUNT,
                                                                         THIRD_ACCOUNT]
    assert document["FailedAccounts"] == []


def test_audit_assumes_role_in_caller_partition(moto_server, proxy):
    run("audit", "--accounts", OTHER_ACCOUNT, "--role-name", "team/KeyAuditor")

    assume = [request for request in proxy.requests if request.action == "AssumeRole"]
    assert [request.params["RoleArn"] for request in assume] == [
        f"arn:aws:iam::{OTHER_ACCOUNT}:role/team/KeyAuditor"
    ]
    assert assume[0].params["RoleSessionName"] == "keyrot-audit"


def test_audit_skips_account_without_role(moto_server, proxy):
    create_user_with_keys(account_iam(moto_server.url, OTHER_ACCOUNT), "Olga", 1)
    proxy.add_rule(
        "AssumeRole", times=None, error=(403, "AccessDenied", "not authorized to assume"),
        match=lambda request: THIRD_ACCOUNT in request.params.get("RoleArn", ""),
    )

    result = run("audit", "--accounts", f"{OTHER_ACCOUNT},{THIRD_ACCOUNT}",
                 "--role-name", ROLE_NAME, "--output", "json")

    assert result.exit_code == 4
    document = json.loads(result.stdout)
    assert [key["UserName"] for key in document["AccessKeys"]] == ["Olga"]
    assert [failure["Account"] for failure in document["FailedAccounts"]] == [THIRD_ACCOUNT]
    assert f"account {THIRD_ACCOUNT}: assume role" in result.stderr
    assert "keyrot: error: 1 of 2 accounts was not audited" in result.stderr
    role = f"arn:aws:iam::{THIRD_ACCOUNT}:role/{ROLE_NAME}"
    assert (f"the caller lacks the IAM permission for this, or the trust policy of role {role} "
            "does not trust the caller arn:aws:sts::123456789012:user/moto") in result.stderr


def test_unassumable_account_counted_singular(moto_server, proxy):
    proxy.add_rule("AssumeRole", times=None, error=(403, "AccessDenied", "not authorized"))

    result = run("audit", "--accounts", OTHER_ACCOUNT, "--role-name", ROLE_NAME)

    assert result.exit_code == 4
    assert "keyrot: error: 1 of 1 account was not audited" in result.stderr.splitlines()


def test_one_breaking_key_is_counted_in_the_singular(iam, proxy):
    create_user_with_keys(iam, "Bob", 1)
    proxy.add_rule("GetCredentialReport", rewrite=generated_time_rewrite(datetime.now(UTC)))

    result = run("audit", "--older-than", "0")

    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        "keyrot: 1 of 1 access key breaks the policy (older than 0 days or unused for 30 days)"
    ]


def test_audit_warns_of_old_report(seeded, proxy):
    generated = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2, minutes=1)
    proxy.add_rule("GetCredentialReport", rewrite=generated_time_rewrite(generated))

    result = run("audit", "--output", "json")

    assert result.exit_code == 0
    stamp = generated.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (f"keyrot: warning: the credential report of account 123456789012 was generated "
            f"at {stamp} (2 hours ago), so key statuses and last use may lag behind "
            "IAM") in result.stderr.splitlines()


def test_audit_does_not_warn_of_a_fresh_report(seeded, proxy):
    generated = datetime.now(UTC) - timedelta(minutes=50)
    proxy.add_rule("GetCredentialReport", rewrite=generated_time_rewrite(generated))

    result = run("audit", "--output", "json")

    assert result.exit_code == 0
    assert "warning" not in result.stderr


def test_audit_accounts_file(moto_server, tmp_path):
    create_user_with_keys(account_iam(moto_server.url, OTHER_ACCOUNT), "Olga", 1)
    accounts = tmp_path / "accounts.txt"
    accounts.write_text(f"# production\n{OTHER_ACCOUNT}  # main\n\n")

    document = audit_json("--accounts-file", str(accounts), "--role-name", ROLE_NAME)

    assert [key["Account"] for key in document["AccessKeys"]] == [OTHER_ACCOUNT]


@pytest.mark.parametrize("arguments, message", [
    (["--accounts", "12345"], "invalid AWS account ID '12345'"),
    (["--accounts", OTHER_ACCOUNT], "need --role-name"),
    (["--role-name", ROLE_NAME], "--role-name needs --accounts"),
    (["--accounts", OTHER_ACCOUNT, "--role-name", "bad role"], "invalid role name"),
    (["--accounts-file", "/nonexistent/accounts"], "cannot read the accounts file"),
])
def test_audit_account_usage_errors(proxy, arguments, message):
    result = run("audit", *arguments)

    assert result.exit_code == 2
    assert message in result.stderr
    assert proxy.requests == []


def test_audit_now_is_recent(seeded):
    now = datetime.fromisoformat(audit_json()["Now"])

    assert abs(now - datetime.now(UTC)) < timedelta(hours=1)


KEYROT = shutil.which("keyrot", path=str(Path(sys.executable).parent)) or "keyrot"


def test_progress_shows_on_terminal(seeded):
    pty = pytest.importorskip("pty")
    leader, follower = pty.openpty()
    chunks = []

    def drain():
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    result = subprocess.run([KEYROT, "audit", "--output", "json"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=follower, env=os.environ.copy(),
                            timeout=60, check=False)
    os.close(follower)
    reader.join(timeout=10)
    os.close(leader)

    assert result.returncode == 0
    assert len(json.loads(result.stdout)["AccessKeys"]) == 4
    terminal = b"".join(chunks).decode("utf-8", "replace")
    assert "waiting for the IAM credential report" in terminal


def test_no_progress_without_terminal(seeded, proxy):
    proxy.add_rule("GetCredentialReport", rewrite=generated_time_rewrite(datetime.now(UTC)))

    result = run("audit", "--output", "json")

    assert result.exit_code == 0
    assert "waiting for" not in result.stderr
    assert result.stderr.splitlines() == [
        "keyrot: 0 of 4 access keys break the policy (older than 90 days or unused for 30 days)"
    ]


@pytest.mark.parametrize("caller_arn, expected", [
    ("arn:aws:iam::123456789012:user/Bob", "arn:aws:iam::111111111111:role/KeyAuditor"),
    ("arn:aws-cn:sts::123456789012:assumed-role/Ops/me",
     "arn:aws-cn:iam::111111111111:role/KeyAuditor"),
    ("arn:aws-us-gov:iam::123456789012:root", "arn:aws-us-gov:iam::111111111111:role/KeyAuditor"),
])
def test_role_arn_uses_caller_partition(caller_arn, expected):
    assert role_arn(caller_arn, OTHER_ACCOUNT, ROLE_NAME) == expected


def test_account_ids_parse_commas_spaces_comments():
    text = f"{OTHER_ACCOUNT}, {THIRD_ACCOUNT}\n# retired: 333333333333\n{OTHER_ACCOUNT}\n"

    assert parse_account_ids(text, "test") == (OTHER_ACCOUNT, THIRD_ACCOUNT)
