"""An MFA session from STS GetSessionToken, for profiles whose policies require MFA."""

from __future__ import annotations

from collections.abc import Callable

import boto3

from keyrot.aws_errors import translated
from keyrot.errors import CredentialsError
from keyrot.iam import IamService
from keyrot.validation import check_mfa_code

# GetSessionToken's minimum; one rotation needs a minute or two at most.
SESSION_SECONDS = 900


def mfa_serial(service: IamService) -> str | None:
    """Return the profile's mfa_serial (an MFA device ARN or serial number), if it has one."""
    return service.profile_setting("mfa_serial")


def mfa_session(service: IamService, serial: str, code: str) -> IamService:
    """Return a service signed with a session that GetSessionToken grants for serial and code.

    The new service reports the long-term key of service as its signing key.
    """
    long_term = service.signing_credentials()
    with translated(f"get an MFA session for {serial} with STS GetSessionToken"):
        response = service.sts_client.get_session_token(
            SerialNumber=serial, TokenCode=code, DurationSeconds=SESSION_SECONDS
        )
    credentials = response["Credentials"]
    session = boto3.Session(
        profile_name=service.settings.profile,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=service.sts_client.meta.region_name,
    )
    return IamService(session, service.settings, long_term_credentials=long_term)


def signed_with_mfa(
    service: IamService,
    code: str | None,
    ask_code: Callable[[str], str] | None,
    warn: Callable[[str], None],
) -> IamService:
    """Return a service signed with one MFA session when the profile has an mfa_serial.

    Only long-term keys get a session: temporary credentials (a role, SSO, a session token)
    already are one. The code comes from code, else from ask_code, which is None when there is
    no terminal. Without either, CredentialsError is raised before any request is sent.
    """
    serial = mfa_serial(service)
    if serial is None:
        if code is not None:
            warn("--mfa-code is ignored because the profile has no mfa_serial")
        return service

    # A role profile (role_arn with mfa_serial) already used its code when botocore assumed the
    # role (keyrot.iam.connect routes --mfa-code there), and its credentials are temporary.
    signing = service.signing_credentials()
    if signing.is_temporary:
        if code is not None and signing.method != "assume-role":
            warn(f"--mfa-code is ignored because the credentials from {signing.method} are "
                 "already temporary")
        return service

    return mfa_session(service, serial, code or _prompted_code(serial, ask_code))


def _prompted_code(serial: str, ask_code: Callable[[str], str] | None) -> str:
    if ask_code is None:
        raise CredentialsError(
            f"this profile requires MFA (mfa_serial {serial}) and there is no terminal to ask "
            "for a code on; pass --mfa-code CODE"
        )
    return check_mfa_code(ask_code(f"MFA code for {serial}").strip())
