"""A new user's first session with keyrot, step by step, with the installed console script.

The steps follow the README in order: look at a user's keys, deactivate and activate one,
rotate a laptop profile, rotate another user's key as an administrator, script over the output,
and audit the account. Each step checks what a user would look at: the exit status, stdout and
the files keyrot wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import create_user_with_keys

KEYROT = Path(sys.executable).parent / "keyrot"


def keyrot(*arguments: str, **environment: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KEYROT), *arguments], stdin=subprocess.DEVNULL, capture_output=True, text=True,
        env={**os.environ, **environment}, timeout=120, check=False,
    )


def shell(command: str) -> str:
    """Run a bash pipeline with the installed keyrot first on PATH; return its stdout."""
    path = f"{KEYROT.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    completed = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True,
                               text=True, env={**os.environ, "PATH": path}, timeout=120,
                               check=True)
    return completed.stdout


def statuses(iam, user_name):
    keys = iam.list_access_keys(UserName=user_name)["AccessKeyMetadata"]
    return {key["AccessKeyId"]: key["Status"] for key in keys}


def test_first_session_end_to_end(iam, aws_environment, tmp_path):
    bob = create_user_with_keys(iam, "Bob", 1)[0]
    create_user_with_keys(iam, "ci", 1)

    listed = keyrot("list", "--user", "Bob")
    assert listed.returncode == 0, listed.stderr
    assert bob.access_key_id in listed.stdout

    deactivated = keyrot("deactivate", "--user", "Bob", bob.access_key_id)
    assert deactivated.returncode == 0, deactivated.stderr
    assert f"* {bob.access_key_id}" in deactivated.stdout
    again = keyrot("deactivate", "--user", "Bob", bob.access_key_id)
    assert again.returncode == 0
    assert "was already Inactive; nothing sent" in again.stderr

    planned = keyrot("activate", "--user", "Bob", bob.access_key_id, "--dry-run",
                     "--output", "json")
    assert json.loads(planned.stdout)["DryRun"] is True
    assert statuses(iam, "Bob") == {bob.access_key_id: "Inactive"}
    activated = keyrot("activate", "--user", "Bob", bob.access_key_id, "--verbose",
                       "--output", "json")
    assert json.loads(activated.stdout)["Changed"] == [bob.access_key_id]
    assert bob.secret_access_key not in activated.stderr

    credentials = aws_environment / "credentials"
    original = (
        "# laptop\n[work]\n"
        f"aws_access_key_id = {bob.access_key_id}\n"
        f"aws_secret_access_key = {bob.secret_access_key}\n"
        "region = eu-west-1\n"
    )
    credentials.write_text(original)
    credentials.chmod(0o600)
    environment_without_keys = {name: value for name, value in os.environ.items()
                                if name not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    rotated = subprocess.run(
        [str(KEYROT), "rotate", "--profile", "work", "--delete"], stdin=subprocess.DEVNULL,
        capture_output=True, text=True, env=environment_without_keys, timeout=120, check=False,
    )
    assert rotated.returncode == 0, rotated.stderr
    new_lines = credentials.read_text().splitlines()
    old_lines = original.splitlines()
    differing = [index for index, (old, new) in enumerate(zip(old_lines, new_lines, strict=True))
                 if old != new]
    assert differing == [2, 3]
    new_key_id = new_lines[2].split(" = ")[1]
    assert statuses(iam, "Bob") == {new_key_id: "Active"}

    env_file = tmp_path / "ci.env"
    admin = keyrot("rotate", "--user", "ci", "--env-file", str(env_file), "--delete")
    assert admin.returncode == 0, admin.stderr
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    assert "AWS_SECRET_ACCESS_KEY=" in env_file.read_text()

    active_ids = shell("keyrot list --user Bob --output text | awk -F'\\t' '$3 == \"Active\" "
                       "{print $2}'")
    assert active_ids.split() == [new_key_id]
    columns = shell("keyrot list --user Bob --output text | cut -f2,3")
    assert columns == f"{new_key_id}\tActive\n"

    audit = keyrot("audit", "--output", "json")
    assert audit.returncode == 0, audit.stderr
    assert "Bob" in audit.stdout

    plan = keyrot("deactivate", "--all-users", "--older-than", "0", "--exclude-user", "ci",
                  "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert statuses(iam, "Bob") == {new_key_id: "Active"}
