"""keyrot in shell scripts and CI: no prompt without a terminal, output that follows the terminal,
tab-separated text for cut and awk, --quiet and --verbose, and the installed console script.

Most tests run the installed `keyrot` as a subprocess with the test's isolated environment, as a
script would; the terminal tests give it a pseudo-terminal.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import (
    FAKE_ACCESS_KEY_ID,
    FAKE_SECRET,
    REGION,
    create_user_with_keys,
    run,
)

from keyrot import __version__
from keyrot.api_logging import ApiCallLogger
from keyrot.cli import COMMANDS

ROOT = Path(__file__).resolve().parent.parent
KEYROT = Path(sys.executable).parent / "keyrot"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
SGR_SEQUENCE = re.compile(r"\x1b\[([0-9;]*)m")
LONG_USER = "ci-deploy-" + "x" * 54
TEXT_COLUMNS = ["UserName", "AccessKeyId", "Status", "CreateDate", "LastUsedDate",
                "LastUsedService", "LastUsedRegion"]


def keyrot(*arguments: str, **environment: str) -> subprocess.CompletedProcess[str]:
    """Run the installed keyrot with no terminal on any stream, as a CI job does."""
    return subprocess.run(
        [str(KEYROT), *arguments], stdin=subprocess.DEVNULL, capture_output=True, text=True,
        env={**os.environ, **environment}, timeout=60, check=False,
    )


def keyrot_on_terminal(*arguments: str, **environment: str) -> tuple[int, str]:
    """Run the installed keyrot with stdout and stderr on a pseudo-terminal; return both."""
    pty = pytest.importorskip("pty")
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [str(KEYROT), *arguments], stdin=subprocess.DEVNULL, stdout=follower, stderr=follower,
        env={**os.environ, "TERM": "xterm-256color", **environment},
    )
    os.close(follower)

    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            process.kill()
            raise AssertionError("keyrot printed nothing on the terminal for 60 s")
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            # Linux reports the end of a pseudo-terminal whose other side closed as EIO.
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return process.wait(timeout=60), b"".join(chunks).decode()


@pytest.fixture
def bob_profile(iam: Any, aws_environment: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Bob's only key, signing every request through profile work; returns its key ID."""
    key = create_user_with_keys(iam, "Bob", 1)[0]
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    (aws_environment / "credentials").write_text(
        f"[work]\naws_access_key_id = {key.access_key_id}\n"
        f"aws_secret_access_key = {key.secret_access_key}\n"
    )
    return key.access_key_id


def statuses(iam: Any, user_name: str) -> dict[str, str]:
    keys = iam.list_access_keys(UserName=user_name)["AccessKeyMetadata"]
    return {key["AccessKeyId"]: key["Status"] for key in keys}


# Prompts


def test_lock_out_without_terminal_names_flag(iam, bob_profile):
    result = keyrot("deactivate", "--profile", "work", "--user", "Bob", bob_profile)

    assert result.returncode == 5
    assert "pass --force" in result.stderr
    assert "?" not in result.stderr
    assert result.stdout == ""
    assert statuses(iam, "Bob") == {bob_profile: "Active"}


def test_lock_out_with_force_needs_no_terminal(iam, bob_profile):
    result = keyrot("deactivate", "--profile", "work", "--user", "Bob", bob_profile, "--force",
                    "--output", "json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["Changed"] == [bob_profile]
    assert statuses(iam, "Bob") == {bob_profile: "Inactive"}


def test_rotate_full_user_names_flag(iam):
    active, spare = create_user_with_keys(iam, "Bob", 2)
    iam.update_access_key(UserName="Bob", AccessKeyId=spare.access_key_id, Status="Inactive")

    result = keyrot("rotate", "--user", "Bob", active.access_key_id, "--output", "json")

    assert result.returncode == 5
    assert "pass --delete-inactive-key" in result.stderr
    assert result.stdout == ""
    assert statuses(iam, "Bob") == {active.access_key_id: "Active", spare.access_key_id: "Inactive"}


def test_rotate_mfa_without_terminal_names_flag(iam, bob_profile, aws_environment):
    (aws_environment / "config").write_text(
        "[profile work]\nmfa_serial = arn:aws:iam::123456789012:mfa/Bob\n"
    )

    result = keyrot("rotate", "--profile", "work")

    assert result.returncode == 4
    assert "no terminal" in result.stderr
    assert "pass --mfa-code" in result.stderr
    assert statuses(iam, "Bob") == {bob_profile: "Active"}


@pytest.mark.parametrize("command", [["deactivate"], ["delete", "--force"]])
def test_bulk_change_without_terminal_names_yes(iam, command):
    key = create_user_with_keys(iam, "Bob", 1)[0]

    result = keyrot(*command, "--all-users", "--older-than", "0")

    assert result.returncode == 5
    assert "there is no terminal to ask on" in result.stderr
    assert "Pass --yes to go ahead" in result.stderr
    assert statuses(iam, "Bob") == {key.access_key_id: "Active"}


@pytest.mark.parametrize("command", [["deactivate"], ["delete", "--force"]])
def test_bulk_change_with_yes_needs_no_terminal(iam, command):
    key = create_user_with_keys(iam, "Bob", 1)[0]

    result = keyrot(*command, "--all-users", "--older-than", "0",
                    "--yes", "--output", "json")

    assert result.returncode == 0, result.stderr
    expected = {} if command[0] == "delete" else {key.access_key_id: "Inactive"}
    assert statuses(iam, "Bob") == expected


def is_prompt(node: ast.AST) -> bool:
    """Tell whether node uses click.confirm, click.prompt, input or getpass."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.value.id == "click" and node.attr in ("confirm", "prompt")
    if isinstance(node, ast.ImportFrom) and node.module == "click":
        return bool({alias.name for alias in node.names} & {"confirm", "prompt"})
    if isinstance(node, ast.Name):
        return node.id in ("input", "getpass")
    return isinstance(node, ast.alias) and node.name == "getpass"


def prompt_uses(tree: ast.AST) -> list[ast.AST]:
    return [node for node in ast.walk(tree) if is_prompt(node)]


def checks_terminal(function: ast.AST) -> bool:
    return any(isinstance(node, ast.Attribute) and node.attr == "isatty"
               for node in ast.walk(function))


def unguarded_prompts(path: Path, root: Path = ROOT) -> list[str]:
    """Return prompts in a module that sit outside a function checking for a terminal."""
    tree = ast.parse(path.read_text(), str(path))
    guarded: set[int] = set()
    functions = [node for node in ast.walk(tree)
                 if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
    for function in functions:
        if checks_terminal(function):
            guarded.update(id(node) for node in prompt_uses(function))
    return [f"{path.relative_to(root)}:{getattr(node, 'lineno', '?')}"
            for node in prompt_uses(tree) if id(node) not in guarded]


def test_every_prompt_checks_for_terminal():
    """Each function that prompts also checks stdin.isatty(), as CommonOptions.confirmer does.

    Without a terminal a command then fails with its exit code and names the flag that answers
    the question, instead of waiting for input that never comes.
    """
    modules = sorted((ROOT / "keyrot").rglob("*.py"))
    confirmer = ast.parse((ROOT / "keyrot" / "commands" / "common.py").read_text())

    unguarded = [place for path in modules for place in unguarded_prompts(path)]

    assert len(modules) > len(COMMANDS)
    assert prompt_uses(confirmer) != []
    assert unguarded == []


def test_unguarded_prompt_is_found(tmp_path):
    module = tmp_path / "prompting.py"
    module.write_text(
        "import sys\n\nimport click\n\n"
        "def ask() -> bool:\n    return click.confirm('Go?')\n\n"
        "def ask_on_terminal() -> bool:\n    return sys.stdin.isatty() and click.confirm('Go?')\n"
    )

    assert unguarded_prompts(module, root=tmp_path) == ["prompting.py:6"]


# Colour and layout


def colour_codes(screen: str) -> list[str]:
    """Return the SGR escape sequences that set a foreground or background colour.

    Bold and italic are styles, not colour, and NO_COLOR leaves them alone.
    """
    found = []
    for match in SGR_SEQUENCE.finditer(screen):
        numbers = [int(part) for part in match.group(1).split(";") if part]
        if any(30 <= n <= 38 or 40 <= n <= 48 or 90 <= n <= 107 for n in numbers):
            found.append(match.group(0))
    return found


def test_terminal_gets_colour(iam, bob_profile):
    exit_code, screen = keyrot_on_terminal("list", "--profile", "work")

    assert exit_code == 0, screen
    assert colour_codes(screen) != []
    assert bob_profile in ANSI_ESCAPE.sub("", screen)


def test_no_color_variable_honoured(iam, bob_profile):
    exit_code, screen = keyrot_on_terminal("list", "--profile", "work", NO_COLOR="1")

    assert exit_code == 0, screen
    assert colour_codes(screen) == []
    assert bob_profile in ANSI_ESCAPE.sub("", screen)


def test_no_color_flag_honoured(iam, bob_profile):
    exit_code, screen = keyrot_on_terminal("list", "--profile", "work", "--no-color")

    assert exit_code == 0, screen
    assert colour_codes(screen) == []
    assert bob_profile in ANSI_ESCAPE.sub("", screen)


def test_warning_on_terminal_without_colour(iam, bob_profile):
    exit_code, screen = keyrot_on_terminal(
        "deactivate", "--profile", "work", "--user", "Bob", bob_profile, "--dry-run",
        "--no-color",
    )

    assert exit_code == 0, screen
    assert "keyrot: warning:" in screen
    assert colour_codes(screen) == []


def test_pipe_gets_plain_output(iam, bob_profile):
    result = keyrot("list", "--profile", "work")

    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout
    assert "\x1b" not in result.stderr


@pytest.mark.parametrize("command", ["list", "deactivate"])
def test_tables_fit_80_columns(iam, command):
    keys = create_user_with_keys(iam, LONG_USER, 2)
    arguments = ["--user", LONG_USER]
    if command == "deactivate":
        arguments.append(keys[0].access_key_id)

    result = keyrot(command, *arguments, COLUMNS="80")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    for key in keys:
        assert any(key.access_key_id in line for line in lines), f"{key.access_key_id} wrapped"
    header = next(line for line in lines if "Access key ID" in line)
    assert "Status" in header
    assert "Created (age)" in header


def test_rotate_tables_fit_80_columns(iam, tmp_path):
    old = create_user_with_keys(iam, LONG_USER, 1)[0]

    result = keyrot("rotate", "--user", LONG_USER, old.access_key_id, "--keep-old",
                    "--env-file", str(tmp_path / "new.env"), COLUMNS="80")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert sum(old.access_key_id in line for line in lines) == 2


def bulk_plan_lines() -> list[str]:
    result = keyrot("deactivate", "--all-users", "--older-than", "0",
                    "--dry-run", COLUMNS="80")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    return lines


def test_bulk_plan_fits_80_columns(iam):
    keys = create_user_with_keys(iam, "deploy-bot", 2)

    lines = bulk_plan_lines()

    for key in keys:
        assert any(key.access_key_id in line for line in lines), f"{key.access_key_id} cut off"


def test_bulk_plan_long_user_fits_80_columns(iam):
    keys = create_user_with_keys(iam, LONG_USER, 2)

    lines = bulk_plan_lines()

    for key in keys:
        assert any(key.access_key_id in line for line in lines), f"{key.access_key_id} cut off"


def test_audit_fits_80_columns(iam):
    keys = create_user_with_keys(iam, LONG_USER, 2)

    result = keyrot("audit", "--key-ids", "all", COLUMNS="80")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    for key in keys:
        assert any(key.access_key_id in line for line in lines), f"{key.access_key_id} cut off"


def test_caller_table_fits_80_columns(iam, monkeypatch):
    key = create_user_with_keys(iam, LONG_USER, 1)[0]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key.secret_access_key)

    result = keyrot("list", COLUMNS="80")

    assert result.returncode == 0, result.stderr
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    assert key.access_key_id in result.stdout


# Tab-separated text for cut and awk


def test_text_lines_have_documented_columns(iam):
    keys = create_user_with_keys(iam, "Bob", 2)

    result = keyrot("list", "--user", "Bob", "--output", "text")

    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [row[1] for row in rows] == [key.access_key_id for key in keys]
    for row in rows:
        assert len(row) == len(TEXT_COLUMNS)
        assert row[0] == "Bob"
        assert row[2] == "Active"
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", row[3])
        assert all(cell != "" for cell in row)


def test_text_status_change_adds_changed_column(iam):
    first, second = create_user_with_keys(iam, "Bob", 2)

    result = keyrot("deactivate", "--user", "Bob", first.access_key_id, "--output", "text")

    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [(row[1], row[2], row[-1]) for row in rows] == [
        (first.access_key_id, "Inactive", "changed"),
        (second.access_key_id, "Active", "-"),
    ]
    assert all(len(row) == len(TEXT_COLUMNS) + 1 for row in rows)


def test_text_feeds_cut_and_awk(iam):
    first, second = create_user_with_keys(iam, "Bob", 2)
    iam.update_access_key(UserName="Bob", AccessKeyId=second.access_key_id, Status="Inactive")
    pipeline = (
        f"{KEYROT} list --user Bob --output text | cut -f2,3; "
        f"{KEYROT} list --user Bob --output text | awk -F'\\t' '$3 == \"Inactive\" {{print $2}}'"
    )

    result = subprocess.run(["bash", "-c", pipeline], capture_output=True, text=True,
                            env=dict(os.environ), timeout=60, check=False)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{first.access_key_id}\tActive",
        f"{second.access_key_id}\tInactive",
        second.access_key_id,
    ]


# --quiet and --verbose


def test_quiet_success_is_silent_on_stderr(iam):
    key = create_user_with_keys(iam, "Bob", 1)[0]

    result = keyrot("deactivate", "--quiet", "--user", "Bob", key.access_key_id,
                    "--output", "json")

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert json.loads(result.stdout)["Changed"] == [key.access_key_id]


def test_quiet_still_reports_errors():
    result = keyrot("list", "--quiet", "--user", "Nobody")

    assert result.returncode == 3
    assert result.stderr.startswith("keyrot: error: ")
    assert "Nobody" in result.stderr
    assert result.stdout == ""


def test_verbose_logs_retry_wait_and_request_ids(iam, proxy):
    create_user_with_keys(iam, "Bob", 1)
    proxy.fail("ListAccessKeys", 400, "Throttling", "Rate exceeded", times=1)

    result = run("list", "--verbose", "--user", "Bob", "--output", "json")

    assert result.exit_code == 0, result.stderr
    log = result.stderr.splitlines()
    assert "keyrot: IAM ListAccessKeys: sending (attempt 1 of 3)" in log
    assert any(line.startswith("keyrot: IAM ListAccessKeys: HTTP 400 Throttling, request ID ")
               for line in log)
    assert any(re.fullmatch(r"keyrot: IAM ListAccessKeys: retrying \(attempt 2 of 3\) "
                            r"after waiting \d+\.\d\d s", line) for line in log)
    assert any(re.fullmatch(r"keyrot: IAM ListAccessKeys: HTTP 200, request ID \w+, \d+ ms", line)
               for line in log)
    assert json.loads(result.stdout)["UserName"] == "Bob"


def test_verbose_logs_connection_failure(proxy):
    proxy.fail("GetCallerIdentity", 503, "ServiceUnavailable", "try later", times=None)

    result = run("list", "--verbose")

    assert result.exit_code == 1
    assert "keyrot: STS GetCallerIdentity: HTTP 503 ServiceUnavailable, request ID" in result.stderr
    assert "retrying (attempt 3 of 3)" in result.stderr


def test_verbose_logs_rotate_verify_retries(iam, proxy):
    old = create_user_with_keys(iam, "Bob", 1)[0]
    proxy.add_rule("GetCallerIdentity", times=1,
                   error=(403, "InvalidClientTokenId", "The security token is invalid"),
                   match=lambda request: request.access_key_id != FAKE_ACCESS_KEY_ID)

    result = run("rotate", "--verbose", "--user", "Bob", old.access_key_id, "--keep-old",
                 "--output", "json")

    assert result.exit_code == 0, result.stderr
    new_key = json.loads(result.stdout)["NewAccessKey"]
    assert "STS GetCallerIdentity: HTTP 403 InvalidClientTokenId, request ID " in result.stderr
    assert f"verify attempt 1 of {new_key['AccessKeyId']} failed" in result.stderr
    assert new_key["SecretAccessKey"] not in result.stderr


def test_verbose_never_logs_signing_secret(iam, bob_profile, aws_environment):
    secret = (aws_environment / "credentials").read_text().split("= ")[-1].strip()

    result = keyrot("deactivate", "--verbose", "--profile", "work", "--user", "Bob", bob_profile,
                    "--force")

    assert result.returncode == 0, result.stderr
    assert "request ID" in result.stderr
    assert secret not in result.stderr
    assert secret not in result.stdout
    assert "Signature=" not in result.stderr


def test_verbose_rotate_keeps_secret_on_stdout(iam):
    old = create_user_with_keys(iam, "Bob", 1)[0]

    result = keyrot("rotate", "--verbose", "--user", "Bob", old.access_key_id, "--keep-old",
                    "--output", "json")

    assert result.returncode == 0, result.stderr
    secret = json.loads(result.stdout)["NewAccessKey"]["SecretAccessKey"]
    assert "IAM CreateAccessKey: HTTP 200, request ID " in result.stderr
    assert secret not in result.stderr


def test_api_logger_never_logs_created_secret(moto_server, caplog):
    """CreateAccessKey returns a secret in its body; the logger must not pass it on."""
    client = boto3.client("iam", endpoint_url=moto_server.url, region_name=REGION,
                          aws_access_key_id=FAKE_ACCESS_KEY_ID,
                          aws_secret_access_key=FAKE_SECRET)
    ApiCallLogger().register(client.meta.events)
    client.create_user(UserName="Bob")

    with caplog.at_level(logging.INFO, logger="keyrot"):
        response = client.create_access_key(UserName="Bob")

    created = response["AccessKey"]
    request_id = response["ResponseMetadata"]["RequestId"]
    messages = [record.getMessage() for record in caplog.records]
    assert "IAM CreateAccessKey: sending (attempt 1 of 3)" in messages
    assert any(message.startswith(f"IAM CreateAccessKey: HTTP 200, request ID {request_id}, ")
               for message in messages)
    assert all(created["SecretAccessKey"] not in message for message in messages)
    assert all(FAKE_SECRET not in message for message in messages)


# Version and help


def test_version_prints_version():
    result = keyrot("--version")

    assert result.returncode == 0
    assert result.stdout == f"keyrot, version {__version__}\n"


def test_no_arguments_prints_help():
    result = keyrot()

    assert result.returncode == 0
    assert result.stdout.startswith("Usage: keyrot")
    for command in COMMANDS:
        assert command in result.stdout
    assert result.stderr == ""
