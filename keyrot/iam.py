"""The IAM and STS service layer: typed records in, typed records out.

Credentials, region, endpoints and retries resolve the way boto3 resolves them. Every botocore
failure is translated into a keyrot error here and nowhere else.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from keyrot import __version__
from keyrot.api_logging import ApiCallLogger
from keyrot.aws_errors import translated
from keyrot.errors import CredentialsError, InvalidInputError
from keyrot.models import AccessKey, Identity, LastUse, NewAccessKey

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_sts import STSClient

logger = logging.getLogger(__name__)

# IAM is a global service, but the region still picks the partition (aws, aws-cn, aws-us-gov).
FALLBACK_REGION = "us-east-1"
DEFAULT_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class ConnectionSettings:
    """How to reach AWS: the options every command shares, before boto3's own resolution."""

    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    log_api_calls: bool = False
    # The retry mode used unless the user configured one; bulk runs pass "adaptive".
    default_retry_mode: str = "standard"
    # Supplies the MFA code when a role profile (role_arn with mfa_serial) is assumed; without it
    # botocore would ask with getpass, even with no terminal.
    role_mfa_code: Callable[[str], str] | None = None


@dataclass(frozen=True)
class SigningCredentials:
    """The signing key ID and where botocore found it; never contains the secret."""

    access_key_id: str
    is_temporary: bool
    method: str


class IamService:
    """IAM and STS calls for one set of credentials."""

    def __init__(
        self,
        session: boto3.Session,
        settings: ConnectionSettings,
        *,
        long_term_credentials: SigningCredentials | None = None,
    ) -> None:
        self._session = session
        self._settings = settings
        # For an MFA session: the long-term key that STS granted the session's temporary key to.
        self._long_term_credentials = long_term_credentials
        self._region = settings.region or session.region_name or FALLBACK_REGION
        _check_partition(session, self._region)
        if settings.log_api_calls:
            _log_api_calls(session)
        self._iam: IAMClient = self._client("iam")
        self._sts: STSClient | None = None
        self._caller: Identity | None = None

    def _client(self, service: str) -> Any:
        config = Config(
            connect_timeout=self._settings.timeout,
            read_timeout=self._settings.timeout,
            retries=_retry_settings(  # type: ignore[arg-type]
                self._session, self._settings.default_retry_mode
            ),
            user_agent_extra=f"keyrot/{__version__}",
        )
        with translated(f"set up the {service.upper()} client"):
            try:
                client = self._session.client(
                    service,  # type: ignore[call-overload]
                    region_name=self._region,
                    endpoint_url=self._settings.endpoint_url,
                    config=config,
                )
            except ValueError as error:
                # botocore raises a plain ValueError for an endpoint URL it cannot use, such as
                # a malformed AWS_ENDPOINT_URL.
                raise InvalidInputError(
                    f"set up the {service.upper()} client failed: {error}; check --endpoint-url "
                    "and the AWS_ENDPOINT_URL variables"
                ) from None
        return client

    def signed_with(self, access_key_id: str, secret_access_key: str) -> IamService:
        """Return a service for the same endpoint and region that signs with another key."""
        session = boto3.Session(
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=self._region,
        )
        return IamService(session, self._settings)

    def signing_credentials(self) -> SigningCredentials:
        """Return the key that signs requests and where botocore found it.

        For an MFA session this is the long-term key behind the session's temporary (ASIA) key,
        and for a role profile it is the source profile's key, because deactivating or deleting
        that key is what locks the caller out.
        """
        if self._long_term_credentials is not None:
            return self._long_term_credentials
        with translated("load AWS credentials"):
            credentials = self._session.get_credentials()
            frozen = credentials.get_frozen_credentials() if credentials else None
        if credentials is None or frozen is None or not frozen.access_key:
            raise CredentialsError(
                "no AWS credentials found; set --profile or AWS_PROFILE, or "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )
        method = str(getattr(credentials, "method", "unknown"))
        source_key = _source_profile_key(self._session) if method == "assume-role" else None
        return SigningCredentials(
            access_key_id=source_key or frozen.access_key,
            is_temporary=bool(frozen.token),
            method=method,
        )

    def profile_setting(self, name: str) -> str | None:
        """Return a setting of the profile in use, such as mfa_serial, or None if it is unset."""
        return _profile_setting(self._session, name)

    def caller(self) -> Identity:
        """Return the identity that signs requests, asking STS once per service."""
        if self._caller is None:
            with translated("identify the caller with STS GetCallerIdentity"):
                response = self.sts_client.get_caller_identity()
            self._caller = Identity.from_arn(response["Account"], response["Arn"])
        return self._caller

    def list_keys(self, user_name: str | None) -> list[AccessKey]:
        """List a user's access keys; None lists the caller's own (the root's, for root)."""
        with translated(f"list access keys of {_whose(user_name)}", user_name=user_name):
            return list(self._iter_keys(user_name))

    def _iter_keys(self, user_name: str | None) -> Iterator[AccessKey]:
        paginator = self._iam.get_paginator("list_access_keys")
        pages = paginator.paginate(**_user_param(user_name))  # type: ignore[arg-type]
        for page in pages:
            for item in page["AccessKeyMetadata"]:
                yield AccessKey(
                    user_name=item.get("UserName", user_name or ""),
                    access_key_id=item["AccessKeyId"],
                    status=item["Status"],
                    create_date=item["CreateDate"],
                )

    def last_use(self, access_key_id: str) -> LastUse:
        """Return when, where and with which service a key was last used."""
        with translated(f"read the last use of access key {access_key_id}"):
            response = self._iam.get_access_key_last_used(AccessKeyId=access_key_id)
        used = response.get("AccessKeyLastUsed", {})
        service = used.get("ServiceName")
        region = used.get("Region")
        return LastUse(
            date=used.get("LastUsedDate"),
            service=None if service in (None, "N/A") else service,
            region=None if region in (None, "N/A") else region,
        )

    def with_last_use(self, keys: list[AccessKey]) -> list[AccessKey]:
        """Return keys with their last use, asking IAM about all of them at once."""
        if len(keys) < 2:
            return [key.with_last_use(self.last_use(key.access_key_id)) for key in keys]

        # botocore clients are thread-safe, so the lookups overlap their network waits.
        with ThreadPoolExecutor(max_workers=len(keys)) as pool:
            uses = list(pool.map(self.last_use, [key.access_key_id for key in keys]))
        return [key.with_last_use(use) for key, use in zip(keys, uses, strict=True)]

    def set_status(self, user_name: str | None, access_key_id: str, status: str) -> None:
        """Set a key to Active or Inactive."""
        action = f"set access key {access_key_id} of {_whose(user_name)} to {status}"
        with translated(action, user_name=user_name):
            self._iam.update_access_key(
                AccessKeyId=access_key_id,
                Status=status,  # type: ignore[arg-type]
                **_user_param(user_name),
            )

    def create_key(self, user_name: str | None) -> NewAccessKey:
        """Create an access key; the caller must store the secret before doing anything else."""
        with translated(f"create an access key for {_whose(user_name)}", user_name=user_name):
            created = self._iam.create_access_key(**_user_param(user_name))["AccessKey"]
        key = AccessKey(
            user_name=created["UserName"],
            access_key_id=created["AccessKeyId"],
            status=created["Status"],
            create_date=created["CreateDate"],
        )
        return NewAccessKey(key=key, secret_access_key=created["SecretAccessKey"])

    def delete_key(self, user_name: str | None, access_key_id: str) -> None:
        action = f"delete access key {access_key_id} of {_whose(user_name)}"
        with translated(action, user_name=user_name):
            self._iam.delete_access_key(AccessKeyId=access_key_id, **_user_param(user_name))

    @property
    def iam_client(self) -> IAMClient:
        """The IAM client, for service modules that add calls of their own."""
        return self._iam

    @property
    def sts_client(self) -> STSClient:
        """The STS client, created on first use because most runs never call STS."""
        if self._sts is None:
            self._sts = self._client("sts")
        return self._sts

    @property
    def settings(self) -> ConnectionSettings:
        return self._settings


def connect(settings: ConnectionSettings) -> IamService:
    """Open a service for the profile, region and endpoint in settings."""
    profile = settings.profile or os.environ.get("AWS_PROFILE") or "default"
    with translated(f"load the AWS profile {profile!r}"):
        # botocore reads AWS_DEFAULT_REGION but not AWS_REGION, which the AWS CLI v2 and the
        # other SDKs read first, so keyrot passes it on itself.
        region = settings.region or os.environ.get("AWS_REGION") or None
        session = boto3.Session(profile_name=settings.profile, region_name=region)
    if session.region_name is None:
        # botocore's own STS client for a role profile needs a region as keyrot's clients do.
        session._session.set_config_variable("region", FALLBACK_REGION)
    if settings.role_mfa_code is not None:
        resolver = session._session.get_component("credential_provider")
        resolver.get_provider("assume-role")._prompter = settings.role_mfa_code
    return IamService(session, settings)


def _log_api_calls(session: boto3.Session) -> None:
    """Log every API call of the session's clients.

    The handlers go on the session, not on keyrot's clients, so that the clients botocore creates
    itself, such as the STS client that assumes a role profile's role, are logged too.
    """
    ApiCallLogger().register(session._session.get_component("event_emitter"))


def _source_profile_key(session: boto3.Session) -> str | None:
    """Return the long-term key ID that a role profile's source_profile chain ends in."""
    profiles = session._session.full_config.get("profiles", {})
    name = session.profile_name
    seen: set[str] = set()
    while name in profiles and name not in seen:
        seen.add(name)
        settings = profiles[name]
        if settings.get("aws_access_key_id") and name != session.profile_name:
            return str(settings["aws_access_key_id"])
        name = settings.get("source_profile")
    return None


def _check_partition(session: boto3.Session, region: str) -> None:
    """Raise InvalidInputError unless an AWS partition lists region or matches its pattern.

    botocore accepts any well-formed name, and IAM's global endpoint then accepts a typo
    such as us-east-1x, so the check uses botocore's own partition data instead.
    """
    loader = session._session.get_component("data_loader")
    partitions = loader.load_data("partitions")["partitions"]
    for partition in partitions:
        if region in partition["regions"] or re.fullmatch(partition["regionRegex"], region):
            return

    raise InvalidInputError(
        f"invalid region {region!r}: no AWS partition has a region of that name; use one such "
        "as us-east-1 (aws), cn-north-1 (aws-cn) or us-gov-west-1 (aws-us-gov)"
    )


def _retry_settings(session: boto3.Session, default_mode: str) -> dict[str, Any]:
    # Standard mode retries throttling and 5xx with capped exponential backoff. A retry mode or
    # attempt count the user configured (AWS_RETRY_MODE, AWS_MAX_ATTEMPTS, or the profile's
    # retry_mode and max_attempts) takes precedence, as it does in boto3.
    configured = os.environ.get("AWS_RETRY_MODE") or _profile_setting(session, "retry_mode")
    return {"mode": configured or default_mode}


def _profile_setting(session: boto3.Session, name: str) -> str | None:
    try:
        value = session._session.get_scoped_config().get(name)
    except BotoCoreError:
        # A broken profile is reported with a full message by the first API call.
        return None
    return str(value) if value else None


def _user_param(user_name: str | None) -> dict[str, str]:
    # Without UserName, IAM acts on the user that signs the request (the root, for root keys).
    return {} if user_name is None else {"UserName": user_name}


def _whose(user_name: str | None) -> str:
    return "the caller" if user_name is None else f"user {user_name}"
