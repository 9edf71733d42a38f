"""Shared fixtures: one local IAM endpoint per session, and an isolated AWS environment per test.

Every test runs with made-up credentials, AWS config and credentials files in its own tmp_path,
HOME pointed there too, the instance metadata service disabled, and AWS_ENDPOINT_URL at a moto
server on 127.0.0.1. Nothing reads or writes the real ~/.aws.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result
from http_proxy import FaultProxy

from keyrot.cli import keyrot

TESTS = Path(__file__).parent
FAKE_ACCESS_KEY_ID = "AKIAFAKEADMIN0000000"
FAKE_SECRET = "fake-secret-for-tests"
REGION = "us-east-1"


@dataclass(frozen=True)
class MotoServer:
    url: str

    def post(self, path: str, body: bytes = b"") -> None:
        request = urllib.request.Request(
            f"{self.url}{path}", data=body, method="POST", headers={"Content-Type": "text/plain"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def reset(self) -> None:
        self.post("/moto-api/reset")
        self.auth_checking(enabled=False)

    def auth_checking(self, *, enabled: bool) -> None:
        """Turn moto's signature and policy checks on or off for every later request."""
        self.post("/moto-api/reset-auth", b"0" if enabled else b"inf")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    process = subprocess.Popen(
        [sys.executable, str(TESTS / "moto_launcher.py")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true"},
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:"), f"moto launcher printed {url!r}"
    try:
        yield MotoServer(url)
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(autouse=True)
def aws_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moto_server: MotoServer
) -> Iterator[Path]:
    """Isolate the test from the real AWS setup and point everything at the local endpoint."""
    for name in list(os.environ):
        if name.startswith("AWS_") or name in ("NO_COLOR", "FORCE_COLOR", "XDG_STATE_HOME"):
            monkeypatch.delenv(name)

    home = tmp_path / "home"
    home.mkdir()
    aws_folder = tmp_path / "aws"
    aws_folder.mkdir()
    (aws_folder / "config").write_text(f"[default]\nregion = {REGION}\n")
    (aws_folder / "credentials").write_text("")

    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(aws_folder / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(aws_folder / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("KEYROT_STATE_DIR", str(tmp_path / "state"))

    moto_server.reset()
    yield aws_folder
    moto_server.reset()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """The folder keyrot keeps rotation journals in during a test (KEYROT_STATE_DIR)."""
    return tmp_path / "state"


@pytest.fixture
def iam(moto_server: MotoServer) -> Any:
    """An IAM client for seeding the local endpoint, signed with the fake admin key."""
    return boto3.client(
        "iam",
        endpoint_url=moto_server.url,
        region_name=REGION,
        aws_access_key_id=FAKE_ACCESS_KEY_ID,
        aws_secret_access_key=FAKE_SECRET,
    )


@dataclass(frozen=True)
class SeededKey:
    user_name: str
    access_key_id: str
    secret_access_key: str


def create_user_with_keys(iam: Any, user_name: str, count: int, path: str = "/") -> list[SeededKey]:
    iam.create_user(UserName=user_name, Path=path)
    keys = []
    for _ in range(count):
        created = iam.create_access_key(UserName=user_name)["AccessKey"]
        keys.append(SeededKey(user_name, created["AccessKeyId"], created["SecretAccessKey"]))
    return keys


def grant_admin(iam: Any, user_name: str) -> None:
    """Give a user full access, for tests that turn moto's auth checking on."""
    iam.put_user_policy(
        UserName=user_name,
        PolicyName="admin",
        PolicyDocument='{"Version": "2012-10-17", "Statement": '
        '[{"Effect": "Allow", "Action": "*", "Resource": "*"}]}',
    )


def sign_as(monkeypatch: pytest.MonkeyPatch, key: SeededKey) -> None:
    """Make keyrot sign with key through the environment variables."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key.secret_access_key)


def run(*arguments: str, input: str | None = None) -> Result:
    """Run keyrot in-process as a user would type it, stdout and stderr kept apart."""
    return CliRunner().invoke(keyrot, list(arguments), input=input, catch_exceptions=False)


@pytest.fixture
def proxy(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of moto, with keyrot's endpoint pointed at it."""
    with FaultProxy(moto_server.url) as running:
        monkeypatch.setenv("AWS_ENDPOINT_URL", running.url)
        yield running
