"""Run the installed `keyrot` console script as a user would, in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import create_user_with_keys

KEYROT = shutil.which("keyrot", path=str(Path(sys.executable).parent)) or "keyrot"


def keyrot(*arguments: str, stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess:
    return subprocess.run(
        [KEYROT, *arguments], stdin=stdin, capture_output=True, text=True, env=os.environ.copy(),
        timeout=60, check=False,
    )


def test_script_deactivates_and_activates(iam):
    key = create_user_with_keys(iam, "Bob", 2)[0]

    deactivated = keyrot("deactivate", "--user", "Bob", key.access_key_id, "--output", "json")
    activated = keyrot("activate", "--user", "Bob", key.access_key_id, "--output", "json")

    assert deactivated.returncode == 0, deactivated.stderr
    assert json.loads(deactivated.stdout)["Changed"] == [key.access_key_id]
    assert activated.returncode == 0, activated.stderr
    assert json.loads(activated.stdout)["After"][0]["Status"] == "Active"


def test_script_plain_table_without_terminal(iam):
    key = create_user_with_keys(iam, "Bob", 1)[0]

    result = keyrot("list", "--user", "Bob")

    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stdout
    assert key.access_key_id in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_script_bad_input_has_no_traceback():
    result = keyrot("deactivate", "--user", "team/Bob", "AKIAIOSFODNN7EXAMPLE")

    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("keyrot: error: invalid value for '--user'")


def test_python_dash_m_runs():
    result = subprocess.run([sys.executable, "-m", "keyrot", "--version"], capture_output=True,
                            text=True, check=False)

    assert result.returncode == 0
    assert result.stdout.startswith("keyrot, version ")


def test_help_does_not_import_boto3_or_rich():
    probe = (
        "import sys\n"
        "from keyrot.cli import main\n"
        "sys.argv = ['keyrot', 'deactivate', '--help']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(name for name in sys.modules if name.split('.')[0] in "
        "('boto3', 'botocore', 'rich'))\n"
        "print(heavy, file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=False)

    assert result.stderr.strip() == "[]"


def open_terminal_stdin():
    pty = pytest.importorskip("pty")
    leader, follower = pty.openpty()
    return leader, follower


@pytest.mark.parametrize(("answer", "exit_code", "status"), [("y\n", 0, "Inactive"),
                                                             ("n\n", 5, "Active")])
def test_lock_out_prompt_on_terminal(iam, monkeypatch, aws_environment, answer, exit_code,
                                     status):
    key = create_user_with_keys(iam, "Bob", 1)[0]
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    (aws_environment / "credentials").write_text(
        f"[work]\naws_access_key_id = {key.access_key_id}\n"
        f"aws_secret_access_key = {key.secret_access_key}\n"
    )
    leader, follower = open_terminal_stdin()
    os.write(leader, answer.encode())

    result = keyrot("deactivate", "--profile", "work", "--user", "Bob", key.access_key_id,
                    stdin=follower)
    os.close(follower)
    os.close(leader)

    assert result.returncode == exit_code, result.stderr
    assert "Deactivate it anyway?" in result.stderr
    listed = iam.list_access_keys(UserName="Bob")["AccessKeyMetadata"]
    assert listed[0]["Status"] == status
