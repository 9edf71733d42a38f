"""Helpers for the fleet tests: clients in other moto accounts, and credential report rewrites.

moto keys its backends by the account of the signing credentials, and its STS AssumeRole
accepts any role ARN: credentials from assuming arn:aws:iam::111111111111:role/X therefore act
in account 111111111111. That is how these tests seed and inspect a second and third account.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import FAKE_ACCESS_KEY_ID, FAKE_SECRET, REGION

HOME_ACCOUNT = "123456789012"
OTHER_ACCOUNT = "111111111111"
THIRD_ACCOUNT = "222222222222"
ROLE_NAME = "KeyAuditor"
CONTENT_PATTERN = re.compile(rb"<Content>([^<]*)</Content>")
GENERATED_TIME_PATTERN = re.compile(rb"<GeneratedTime>[^<]*</GeneratedTime>")
KEYROT = shutil.which("keyrot", path=str(Path(sys.executable).parent)) or "keyrot"


def account_iam(endpoint: str, account_id: str) -> Any:
    """Return an IAM client acting in account_id through an assumed role on the endpoint."""
    sts = boto3.client("sts", endpoint_url=endpoint, region_name=REGION,
                       aws_access_key_id=FAKE_ACCESS_KEY_ID,
                       aws_secret_access_key=FAKE_SECRET)
    credentials = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/{ROLE_NAME}", RoleSessionName="test-seeding"
    )["Credentials"]
    return boto3.client(
        "iam", endpoint_url=endpoint, region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def report_rewrite(edit: Callable[[str], str]) -> Callable[[bytes], bytes]:
    """Return a proxy rewrite for GetCredentialReport that applies edit to the CSV text."""

    def rewrite(body: bytes) -> bytes:
        found = CONTENT_PATTERN.search(body)
        assert found is not None, body
        csv_text = base64.b64decode(found.group(1)).decode()
        encoded = base64.b64encode(edit(csv_text).encode())
        return body[: found.start(1)] + encoded + body[found.end(1):]

    return rewrite


def state_rewrite(state: str) -> Callable[[bytes], bytes]:
    """Return a proxy rewrite for GenerateCredentialReport that reports state instead."""

    def rewrite(body: bytes) -> bytes:
        return re.sub(rb"<State>[A-Z]+</State>", f"<State>{state}</State>".encode(), body)

    return rewrite


def use_key(endpoint: str, access_key_id: str, secret: str) -> None:
    """Sign one request with a key, so IAM records its last use."""
    boto3.client("iam", endpoint_url=endpoint, region_name=REGION,
                 aws_access_key_id=access_key_id, aws_secret_access_key=secret).get_user()


def keyrot_on_terminal(answer: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    """Run the installed keyrot with a pseudo-terminal as stdin, typing answer into it."""
    pty = pytest.importorskip("pty")
    leader, follower = pty.openpty()
    os.write(leader, answer.encode())
    try:
        return subprocess.run(
            [KEYROT, *arguments], stdin=follower, capture_output=True, text=True,
            env=os.environ.copy(), timeout=60, check=False,
        )
    finally:
        os.close(follower)
        os.close(leader)


def generated_time_rewrite(moment: datetime) -> Callable[[bytes], bytes]:
    """Return a proxy rewrite for GetCredentialReport that sets its GeneratedTime to moment."""
    stamp = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ").encode()

    def rewrite(body: bytes) -> bytes:
        rewritten, count = GENERATED_TIME_PATTERN.subn(
            b"<GeneratedTime>" + stamp + b"</GeneratedTime>", body
        )
        assert count == 1, body
        return rewritten

    return rewrite
