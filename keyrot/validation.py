"""Checks on user input, made before any request is sent.

The patterns are IAM's own: an access key ID is 16 to 128 word characters, and a user name is
1 to 64 characters of ASCII letters, digits and ``+=,.@_-``. IAM's ``\\w`` is ASCII-only, so these
patterns are too.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from keyrot.errors import InvalidInputError

ACCESS_KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9_]{16,128}")
USER_NAME_PATTERN = re.compile(r"[A-Za-z0-9+=,.@_-]{1,64}")
# botocore's own check for a region name (botocore.utils.validate_region_name).
REGION_PATTERN = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")
# STS GetSessionToken's TokenCode: the six digits an MFA device shows.
MFA_CODE_PATTERN = re.compile(r"[0-9]{6}")


def check_access_key_id(value: str) -> str:
    """Return value if it is a well-formed access key ID, else raise InvalidInputError."""
    if ACCESS_KEY_ID_PATTERN.fullmatch(value):
        return value

    raise InvalidInputError(
        f"invalid access key ID {value!r}: an access key ID is 16 to 128 ASCII letters, digits "
        "or underscores, such as AKIAIOSFODNN7EXAMPLE"
    )


def check_user_name(value: str) -> str:
    """Return value if it is a valid IAM user name, else raise InvalidInputError."""
    if USER_NAME_PATTERN.fullmatch(value):
        return value

    hint = ""
    if "/" in value:
        hint = f" (for the ARN path /{value.rsplit('/', 1)[0]}/, pass only the name after it)"
    raise InvalidInputError(
        f"invalid user name {value!r}: a user name has no path and allows only ASCII letters, "
        f"digits and +=,.@_-, at most 64 characters{hint}"
    )


def check_region(value: str) -> str:
    """Return value if it has the shape of an AWS region name, else raise InvalidInputError."""
    if REGION_PATTERN.fullmatch(value):
        return value

    raise InvalidInputError(
        f"invalid region {value!r}: a region name is letters, digits and hyphens, "
        "such as us-east-1 or cn-north-1"
    )


def check_endpoint_url(value: str) -> str:
    """Return value if it is an http or https URL with a host, else raise InvalidInputError."""
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.hostname:
        return value

    raise InvalidInputError(
        f"invalid endpoint URL {value!r}: give an http or https URL with a host, "
        "such as http://127.0.0.1:5000"
    )


def check_mfa_code(value: str) -> str:
    """Return value if it is a 6-digit MFA code, else raise InvalidInputError."""
    if MFA_CODE_PATTERN.fullmatch(value):
        return value

    raise InvalidInputError(f"invalid MFA code {value!r}: a code is 6 digits")
