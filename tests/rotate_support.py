"""Shared pieces of the rotate tests: profile files with Bob's real key, and key checks."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from conftest import REGION, SeededKey

OLD_KEY_PLACEHOLDER = "AKIAIOSFODNN7EXAMPLE"
OLD_SECRET_PLACEHOLDER = "OLDSECRET"
ROOT_ARN = "arn:aws:iam::123456789012:root"

# Credentials files as people keep them; the placeholders are replaced by a key made in moto.
CASES = Path(__file__).parent / "cases"
COMMENTS_INI = (CASES / "comments.ini").read_text()
TWO_PROFILES_INI = (CASES / "two-profiles.ini").read_text()
PADDING_INI = (CASES / "padding.ini").read_text()
UPPERCASE_INI = (CASES / "uppercase.ini").read_text()
ROOT_INI = (CASES / "root.ini").read_text()
TEMPORARY_INI = (CASES / "temporary.ini").read_text()


def with_key(template: str, key: SeededKey) -> str:
    """Return template with the placeholder key replaced by key."""
    text = template.replace(OLD_KEY_PLACEHOLDER, key.access_key_id)
    return text.replace(OLD_SECRET_PLACEHOLDER, key.secret_access_key)


def install(path: Path, template: str, key: SeededKey, mode: int = 0o600) -> bytes:
    """Write template with key's ID and secret to path; return the bytes written."""
    content = with_key(template, key).encode()
    path.write_bytes(content)
    path.chmod(mode)
    return content


def profile_values(path: Path, section: str) -> tuple[str, str]:
    """Return a section's access key ID and secret, matching option names in any case."""
    text = path.read_text()
    body = text.split(f"[{section}]", 1)[1].split("\n[", 1)[0]
    values = {}
    for name in ("aws_access_key_id", "aws_secret_access_key"):
        found = re.search(rf"^{name}\s*[=:]\s*(\S+)", body, re.MULTILINE | re.IGNORECASE)
        assert found, f"{name} missing from [{section}] of {path}"
        values[name] = found.group(1)
    return values["aws_access_key_id"], values["aws_secret_access_key"]


def signs_as(endpoint: str, key_id: str, secret: str) -> str | None:
    """Return the ARN STS answers for a key, or None when the key is rejected."""
    sts = boto3.client(
        "sts",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )
    try:
        return str(sts.get_caller_identity()["Arn"])
    except ClientError:
        return None


def iam_as(endpoint: str, key_id: str, secret: str) -> Any:
    return boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )


def key_statuses(iam: Any, user_name: str) -> dict[str, str]:
    keys = iam.list_access_keys(UserName=user_name)["AccessKeyMetadata"]
    return {key["AccessKeyId"]: key["Status"] for key in keys}


def use_profile_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Drop the conftest's fake environment key so that botocore reads the profile files."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)


def journal_files(state_dir: Path) -> list[Path]:
    return sorted(state_dir.glob("rotate-*.json")) if state_dir.exists() else []


def environment_for_subprocess(endpoint: str) -> dict[str, str]:
    return {**os.environ, "AWS_ENDPOINT_URL": endpoint}
