"""examples/ci-rotate.sh, the README's CI recipe, run against the local IAM endpoint.

The hand-off goes to a stand-in `gh` on PATH that stores what it is given in files, so the tests
can check that the secret store receives a key that works and that no secret reaches the log.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from conftest import REGION, MotoServer, SeededKey, create_user_with_keys, sign_as

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "ci-rotate.sh"
BIN = Path(sys.executable).parent

# A stand-in for the GitHub CLI: `gh secret set NAME --body VALUE` or `gh secret set NAME <file`
# stores VALUE in $GH_STORE/NAME; GH_FAIL=1 makes it fail as gh does without a valid token, and
# GH_FAIL_NAME=NAME makes only the call that sets NAME fail.
FAKE_GH = """#!/usr/bin/env bash
set -euo pipefail
[ "${GH_FAIL:-}" != 1 ] || { echo "HTTP 401: Bad credentials" >&2; exit 1; }
[ "$1 $2" = "secret set" ] || { echo "fake gh: unexpected $*" >&2; exit 64; }
name=$3
[ "${GH_FAIL_NAME:-}" != "$name" ] || { echo "HTTP 502: Bad Gateway" >&2; exit 1; }
if [ "${4:-}" = "--body" ]; then
    printf '%s' "$5" >"$GH_STORE/$name"
else
    cat >"$GH_STORE/$name"
fi
"""

pytestmark = pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")


@pytest.fixture
def gh_store(tmp_path: Path) -> Path:
    """A folder that the stand-in gh writes secrets into; its bin folder goes first on PATH."""
    tools = tmp_path / "tools"
    tools.mkdir()
    gh = tools / "gh"
    gh.write_text(FAKE_GH)
    gh.chmod(gh.stat().st_mode | stat.S_IXUSR)
    store = tmp_path / "store"
    store.mkdir()
    return store


def run_script(gh_store: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    tools = gh_store.parent / "tools"
    environment = {
        **os.environ,
        "PATH": os.pathsep.join([str(tools), str(BIN), os.environ.get("PATH", "")]),
        "GH_STORE": str(gh_store),
        **variables,
    }
    environment = {name: value for name, value in environment.items() if value != "<unset>"}
    return subprocess.run(["bash", str(SCRIPT)], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, env=environment, timeout=120, check=False)


def statuses(iam: Any, user_name: str) -> dict[str, str]:
    keys = iam.list_access_keys(UserName=user_name)["AccessKeyMetadata"]
    return {key["AccessKeyId"]: key["Status"] for key in keys}


def new_key_id(iam: Any, user_name: str, old: set[str]) -> str:
    created = [key_id for key_id in statuses(iam, user_name) if key_id not in old]
    assert len(created) == 1, statuses(iam, user_name)
    return created[0]


def caller_arn(moto_server: MotoServer, access_key_id: str, secret: str) -> str:
    sts = boto3.client("sts", endpoint_url=moto_server.url, region_name=REGION,
                       aws_access_key_id=access_key_id, aws_secret_access_key=secret)
    return str(sts.get_caller_identity()["Arn"])


@pytest.fixture
def ci_key(iam: Any) -> SeededKey:
    return create_user_with_keys(iam, "ci", 1)[0]


def test_rehearsal_rotates_and_retires(iam, gh_store, ci_key):
    result = run_script(gh_store, KEYROT_USER="ci")

    assert result.returncode == 0, result.stderr
    new = new_key_id(iam, "ci", {ci_key.access_key_id})
    assert statuses(iam, "ci") == {ci_key.access_key_id: "Inactive", new: "Active"}
    assert f"replaced {ci_key.access_key_id} with {new}" in result.stderr
    assert "rehearsal" in result.stderr
    assert result.stdout == ""
    assert list(gh_store.iterdir()) == []


def test_handoff_stores_working_key(iam, moto_server, gh_store, ci_key):
    result = run_script(gh_store, KEYROT_USER="ci", KEYROT_HANDOFF="gh")

    assert result.returncode == 0, result.stderr
    stored_id = (gh_store / "AWS_ACCESS_KEY_ID").read_text()
    stored_secret = (gh_store / "AWS_SECRET_ACCESS_KEY").read_text().strip()
    assert statuses(iam, "ci") == {ci_key.access_key_id: "Inactive", stored_id: "Active"}
    assert caller_arn(moto_server, stored_id, stored_secret).endswith(":user/ci")
    assert stored_secret not in result.stdout + result.stderr


def test_handoff_uses_configured_names(iam, gh_store, ci_key):
    result = run_script(gh_store, KEYROT_USER="ci", KEYROT_HANDOFF="gh",
                        KEYROT_ID_NAME="CI_KEY_ID", KEYROT_SECRET_NAME="CI_SECRET")

    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in gh_store.iterdir()) == ["CI_KEY_ID", "CI_SECRET"]


def test_second_run_deletes_previous_key(iam, gh_store, ci_key):
    first = run_script(gh_store, KEYROT_USER="ci")
    middle = new_key_id(iam, "ci", {ci_key.access_key_id})

    second = run_script(gh_store, KEYROT_USER="ci")

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    latest = new_key_id(iam, "ci", {middle})
    assert statuses(iam, "ci") == {middle: "Inactive", latest: "Active"}


def test_failed_handoff_keeps_old_key(iam, gh_store, ci_key):
    result = run_script(gh_store, KEYROT_USER="ci", KEYROT_HANDOFF="gh", GH_FAIL="1")

    assert result.returncode == 6
    new = new_key_id(iam, "ci", {ci_key.access_key_id})
    assert statuses(iam, "ci") == {ci_key.access_key_id: "Active", new: "Inactive"}
    assert "storing the new key failed" in result.stderr
    assert f"the old key {ci_key.access_key_id} is still active and still in the secret store" \
        in result.stderr
    assert list(gh_store.iterdir()) == []


def test_half_stored_handoff_keeps_both_keys(iam, moto_server, gh_store, ci_key):
    (gh_store / "AWS_ACCESS_KEY_ID").write_text(ci_key.access_key_id)
    (gh_store / "AWS_SECRET_ACCESS_KEY").write_text(ci_key.secret_access_key)

    result = run_script(gh_store, KEYROT_USER="ci", KEYROT_HANDOFF="gh",
                        GH_FAIL_NAME="AWS_SECRET_ACCESS_KEY")

    assert result.returncode == 6
    new = new_key_id(iam, "ci", {ci_key.access_key_id})
    assert statuses(iam, "ci") == {ci_key.access_key_id: "Active", new: "Active"}
    assert (gh_store / "AWS_ACCESS_KEY_ID").read_text() == new
    assert (gh_store / "AWS_SECRET_ACCESS_KEY").read_text() == ci_key.secret_access_key
    assert "is still in the secret store" not in result.stderr
    assert f"storing the new key failed half way: AWS_ACCESS_KEY_ID now holds the new key ID " \
        f"{new}, while AWS_SECRET_ACCESS_KEY still holds the secret of the old key " \
        f"{ci_key.access_key_id} (or is missing), so the stored pair does not work. Both keys " \
        "stay active." in result.stderr
    undo = (f"gh secret set AWS_ACCESS_KEY_ID --body {ci_key.access_key_id} && keyrot "
            f"deactivate --user ci {new}")
    assert undo in result.stderr

    tools = gh_store.parent / "tools"
    environment = {**os.environ, "GH_STORE": str(gh_store),
                   "PATH": os.pathsep.join([str(tools), str(BIN), os.environ["PATH"]])}
    subprocess.run(["bash", "-c", undo], env=environment, check=True, capture_output=True,
                   timeout=60)
    assert caller_arn(moto_server, (gh_store / "AWS_ACCESS_KEY_ID").read_text(),
                      ci_key.secret_access_key).endswith(":user/ci")
    again = run_script(gh_store, KEYROT_USER="ci", KEYROT_HANDOFF="gh")

    assert again.returncode == 0, again.stderr
    stored_id = (gh_store / "AWS_ACCESS_KEY_ID").read_text()
    assert statuses(iam, "ci") == {ci_key.access_key_id: "Inactive", stored_id: "Active"}


def test_failed_handoff_then_retry(iam, gh_store, ci_key):
    run_script(gh_store, KEYROT_USER="ci", KEYROT_HANDOFF="gh", GH_FAIL="1")
    abandoned = new_key_id(iam, "ci", {ci_key.access_key_id})

    result = run_script(gh_store, KEYROT_USER="ci", KEYROT_HANDOFF="gh")

    assert result.returncode == 0, result.stderr
    stored_id = (gh_store / "AWS_ACCESS_KEY_ID").read_text()
    assert abandoned not in statuses(iam, "ci")
    assert statuses(iam, "ci") == {ci_key.access_key_id: "Inactive", stored_id: "Active"}


def test_other_active_key_refused(iam, gh_store):
    first, second = create_user_with_keys(iam, "ci", 2)

    result = run_script(gh_store, KEYROT_USER="ci", KEYROT_KEY_ID=second.access_key_id)

    assert result.returncode == 5
    assert "already has two access keys" in result.stderr
    assert statuses(iam, "ci") == {first.access_key_id: "Active", second.access_key_id: "Active"}


def test_two_active_keys_need_key_id(iam, gh_store):
    keys = create_user_with_keys(iam, "ci", 2)

    result = run_script(gh_store, KEYROT_USER="ci")

    assert result.returncode == 5
    assert "ci has 2 active access keys, not 1; set KEYROT_KEY_ID" in result.stderr
    assert statuses(iam, "ci") == {key.access_key_id: "Active" for key in keys}


def test_missing_user_variable_exits_2(gh_store):
    result = run_script(gh_store, KEYROT_USER="<unset>")

    assert result.returncode == 2
    assert "KEYROT_USER is not set" in result.stderr


def test_no_handoff_against_aws_exits_2(iam, gh_store, ci_key):
    result = run_script(gh_store, KEYROT_USER="ci", AWS_ENDPOINT_URL="<unset>")

    assert result.returncode == 2
    assert "KEYROT_HANDOFF is not set, so the new secret would be lost" in result.stderr
    assert statuses(iam, "ci") == {ci_key.access_key_id: "Active"}


def test_unknown_user_exits_3(gh_store):
    result = run_script(gh_store, KEYROT_USER="nobody")

    assert result.returncode == 3
    assert "nobody" in result.stderr


def test_denied_rotator_exits_4(iam, moto_server, gh_store, ci_key, monkeypatch):
    outsider = create_user_with_keys(iam, "outsider", 1)[0]
    sign_as(monkeypatch, outsider)
    moto_server.auth_checking(enabled=True)

    result = run_script(gh_store, KEYROT_USER="ci", KEYROT_HANDOFF="gh")

    moto_server.auth_checking(enabled=False)
    assert result.returncode == 4
    assert statuses(iam, "ci") == {ci_key.access_key_id: "Active"}
    assert list(gh_store.iterdir()) == []


def readme_workflow() -> dict[Any, Any]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Rotating a CI user's key on a schedule", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    document = yaml.safe_load(block)
    assert isinstance(document, dict)
    return document


def test_readme_workflow_runs_script():
    workflow = readme_workflow()

    # YAML 1.1 reads the key `on` as True.
    triggers = workflow.get("on", workflow.get(True))
    steps = workflow["jobs"]["rotate"]["steps"]
    step = next(step for step in steps if "ci-rotate.sh" in step.get("run", ""))
    assert triggers["schedule"][0]["cron"]
    assert step["run"] == "bash examples/ci-rotate.sh"
    assert step["env"]["KEYROT_HANDOFF"] == "gh"
    assert set(step["env"]) <= {"KEYROT_USER", "KEYROT_HANDOFF", "KEYROT_KEY_ID", "KEYROT_ID_NAME",
                                "KEYROT_SECRET_NAME", "GH_TOKEN", "GH_REPO"}
    for name in step["env"]:
        if name.startswith("KEYROT_"):
            assert name in SCRIPT.read_text()
