"""The source of a profile's credentials as botocore picks it, read before any request.

botocore tries a profile's sources in a fixed order: role_arn first, then SSO (sso_session or
sso_start_url), then aws_access_key_id in the credentials file, then credential_process, then
aws_access_key_id in the config file. Only a long-term key that wins that race can be rotated;
the others are temporary credentials, renewed by botocore itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keyrot.errors import SafetyRefusal


@dataclass(frozen=True)
class TemporarySource:
    """The setting that makes botocore sign with temporary credentials instead of a static key."""

    setting: str  # the option that wins: role_arn, sso_session, sso_start_url, credential_process
    description: str  # such as "a role (role_arn arn:aws:iam::123456789012:role/admin)"
    source_profile: str | None


def profile_settings(profile: str) -> dict[str, Any]:
    """Return the profile's settings as botocore merges them from the config and credentials files.

    A file botocore cannot parse gives no settings; keyrot's own parser reports it afterwards.
    """
    import botocore.exceptions
    import botocore.session

    session = botocore.session.Session(profile=profile)
    try:
        profiles: dict[str, dict[str, Any]] = session.full_config.get("profiles", {})
    except botocore.exceptions.BotoCoreError:
        return {}
    return profiles.get(profile, {})


def temporary_source(
    settings: dict[str, Any], key_file: Path | None, credentials_file: Path
) -> TemporarySource | None:
    """Return the setting that gives the profile temporary credentials, or None for a static key.

    key_file is the file whose section contains the profile's aws_access_key_id, if any.
    """
    source_profile = settings.get("source_profile")
    role_arn = settings.get("role_arn")
    if role_arn:
        return TemporarySource("role_arn", f"a role (role_arn {role_arn})", source_profile)
    for name in ("sso_session", "sso_start_url"):
        if settings.get(name):
            return TemporarySource(name, f"IAM Identity Center SSO ({name} {settings[name]})", None)

    key_in_credentials_file = key_file is not None and key_file == credentials_file
    if settings.get("credential_process") and not key_in_credentials_file:
        return TemporarySource("credential_process", "credential_process", None)
    return None


def refuse_temporary(profile: str, source: TemporarySource, has_static_key: bool) -> SafetyRefusal:
    """Return the refusal to rotate a profile whose credentials come from source."""
    unused = ""
    if has_static_key:
        unused = (f" (its aws_access_key_id is never used: botocore takes {source.setting} "
                  "first)")
    # A profile that names itself as its source would send the user round in a circle.
    if source.source_profile and source.source_profile != profile:
        way_out = (
            f"rotate the key of its source profile instead: keyrot rotate --profile "
            f"{source.source_profile}, or, as an administrator, keyrot rotate --user NAME"
        )
    else:
        way_out = (
            "to rotate an IAM user's long-term key, run keyrot rotate --user NAME with an "
            "administrator's profile"
        )
    return SafetyRefusal(
        f"profile {profile} gets temporary credentials from {source.description}{unused}, "
        f"and those cannot be rotated; nothing was changed. To go on, {way_out}"
    )
