"""An MFA session from STS GetSessionToken, for profiles whose policies require MFA."""

from __future__ import annotations

import boto3

from keyrot.aws_errors import translated
from keyrot.iam import IamService

# GetSessionToken's minimum; one rotation needs a minute or two at most.
SESSION_SECONDS = 900


def mfa_serial(service: IamService) -> str | None:
    """Return the profile's mfa_serial (an MFA device ARN or serial number), if it has one."""
    return service.profile_setting("mfa_serial")


def mfa_session(service: IamService, serial: str, code: str) -> IamService:
    """Return a service signed with a session that GetSessionToken grants for serial and code."""
    with translated(f"get an MFA session for {serial} with STS GetSessionToken"):
        response = service.sts_client.get_session_token(
            SerialNumber=serial, TokenCode=code, DurationSeconds=SESSION_SECONDS
        )
    credentials = response["Credentials"]
    session = boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=service.sts_client.meta.region_name,
    )
    return IamService(session, service.settings)
