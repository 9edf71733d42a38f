"""Translation of botocore failures into keyrot errors, done once at the service boundary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from botocore import exceptions as boto_errors
from botocore.parsers import ResponseParserError

from keyrot.errors import (
    AwsRequestError,
    CredentialsError,
    InvalidInputError,
    KeyrotError,
    NotFoundError,
    SafetyRefusal,
)

CREDENTIAL_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
        "InvalidAccessKeyId",
        "AuthFailure",
        "MissingAuthenticationToken",
        "IncompleteSignature",
    }
)
EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
THROTTLING_CODES = frozenset(
    {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
)
INVALID_INPUT_CODES = frozenset({"ValidationError", "InvalidInput", "MalformedInput"})

INPUT_ERRORS = (
    boto_errors.ParamValidationError,
    boto_errors.NoRegionError,
    boto_errors.InvalidRegionError,
)

CREDENTIALS_HINT = (
    "check --profile, AWS_PROFILE and AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
)
ROOT_USER_HINT = (
    "the account root has no IAM user name: root access keys are managed by signing with root "
    "credentials and leaving out --user"
)


@contextmanager
def translated(
    action: str, *, user_name: str | None = None, denied_hint: str | None = None
) -> Iterator[None]:
    """Run the block, re-raising any botocore failure as the KeyrotError for its exit status.

    action names what was being done, such as "list access keys of user Bob", and starts every
    message. denied_hint names another cause of an access-denied error besides a missing
    permission, such as a role's trust policy.
    """
    try:
        yield
    except boto_errors.ClientError as error:
        raise _from_client_error(action, error, user_name, denied_hint) from None
    except boto_errors.BotoCoreError as error:
        raise _from_botocore_error(action, error) from None
    except (ResponseParserError, KeyError):
        # The endpoint returned something other than an AWS API response, such as an HTML
        # page: botocore raises its parser error (not a BotoCoreError) for invalid XML, and
        # well-formed XML of the wrong shape surfaces as a missing key in the parsed response.
        raise AwsRequestError(
            f"{action} failed: the endpoint's response is not an AWS API response; check that "
            "--endpoint-url (or AWS_ENDPOINT_URL) points at IAM and STS"
        ) from None


def _from_client_error(
    action: str, error: boto_errors.ClientError, user_name: str | None,
    denied_hint: str | None = None,
) -> KeyrotError:
    details = error.response.get("Error", {})
    code = str(details.get("Code", "Unknown"))
    aws_message = str(details.get("Message") or code).rstrip(".")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    retries = error.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
    summary = f"{action} failed: {aws_message} ({code})"

    if code == "NoSuchEntity":
        if user_name is not None and user_name.lower() == "root":
            return NotFoundError(f"{summary}; {ROOT_USER_HINT}")
        if user_name is not None:
            return NotFoundError(
                f"{summary}; check the spelling of {user_name!r} and that the profile is for the "
                "right account (`keyrot audit` lists the account's users)"
            )
        return NotFoundError(summary)
    if code in EXPIRED_CODES:
        return CredentialsError(
            f"{summary}; the session token has expired: refresh it (for example with "
            "`aws sso login` or a new `aws sts get-session-token`) and run keyrot again"
        )
    if code in CREDENTIAL_CODES:
        return CredentialsError(f"{summary}; the credentials were rejected: {CREDENTIALS_HINT}")
    if code in ACCESS_DENIED_CODES:
        hint = f", or {denied_hint}" if denied_hint else ""
        return CredentialsError(f"{summary}; the caller lacks the IAM permission for this{hint}")
    if code in THROTTLING_CODES:
        return AwsRequestError(
            f"{summary} after {retries + 1} attempts; AWS is throttling requests, try again "
            "later or raise AWS_MAX_ATTEMPTS"
        )
    if code == "LimitExceeded":
        return SafetyRefusal(summary)
    if code in INVALID_INPUT_CODES:
        return InvalidInputError(summary)
    if isinstance(status, int) and status >= 500:
        return AwsRequestError(f"{summary}; the service returned HTTP {status}, try again later")
    return AwsRequestError(summary)


def _from_botocore_error(action: str, error: boto_errors.BotoCoreError) -> KeyrotError:
    summary = f"{action} failed: {error}"

    if isinstance(error, boto_errors.ProfileNotFound):
        return NotFoundError(
            f"{summary}; list the profiles with `aws configure list-profiles` or check "
            "AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE"
        )
    if isinstance(error, boto_errors.NoCredentialsError | boto_errors.PartialCredentialsError):
        return CredentialsError(f"{summary}; {CREDENTIALS_HINT}")
    if isinstance(error, boto_errors.CredentialRetrievalError | boto_errors.TokenRetrievalError):
        return CredentialsError(summary)
    if isinstance(error, boto_errors.SSOError):
        return CredentialsError(f"{summary}; run `aws sso login` and try again")
    if isinstance(error, boto_errors.ConfigParseError):
        problem = _config_problem(str(error.kwargs.get("path", "")))
        return InvalidInputError(f"{summary}{problem}; fix the file's syntax and try again")
    if isinstance(error, boto_errors.InvalidConfigError):
        return InvalidInputError(f"{summary}; fix the profile in AWS_CONFIG_FILE and try again")
    if isinstance(error, INPUT_ERRORS):
        return InvalidInputError(summary)
    if isinstance(error, boto_errors.ReadTimeoutError | boto_errors.ConnectTimeoutError):
        return AwsRequestError(
            f"{summary}; the endpoint did not respond in time, even after retries: raise "
            "--timeout (seconds per attempt) or AWS_MAX_ATTEMPTS, or check the endpoint"
        )
    if isinstance(error, boto_errors.EndpointConnectionError | boto_errors.ConnectionClosedError):
        return AwsRequestError(f"{summary}; check --endpoint-url and the network")
    return AwsRequestError(summary)


def _config_problem(path: str) -> str:
    """Return where and why keyrot's own parser rejects the file botocore could not parse."""
    from keyrot.ini_edit import IniFormatError, parse_ini

    try:
        parse_ini(Path(path).expanduser().read_bytes())
    except IniFormatError as problem:
        return f" (line {problem.line_number}: {problem.reason})" if problem.line_number else ""
    except OSError:
        return ""
    return ""
