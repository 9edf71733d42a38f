"""Exception types that carry keyrot's documented exit statuses.

Every expected failure is raised as a KeyrotError subclass. The single handler in keyrot.cli turns
it into a one-line message on stderr and the matching exit status, never a traceback.
"""

from __future__ import annotations


class KeyrotError(Exception):
    """Base of every expected keyrot failure; exit_code is the process exit status."""

    exit_code = 1

    def __init__(self, message: str, *, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class AwsRequestError(KeyrotError):
    """AWS failed the request: a service error, throttling after retries, or no connection."""

    exit_code = 1


class InvalidInputError(KeyrotError):
    """Invalid usage or input, found before anything was sent or changed."""

    exit_code = 2


class NotFoundError(KeyrotError):
    """No such user, access key or profile."""

    exit_code = 3


class CredentialsError(KeyrotError):
    """No usable credentials, an expired token, MFA needed, or access denied."""

    exit_code = 4


class SafetyRefusal(KeyrotError):
    """Refused for safety, or rolled back, with nothing changed."""

    exit_code = 5


class PartialFailure(KeyrotError):
    """IAM changed but the job did not finish; details name the keys and the finishing command."""

    exit_code = 6


EXIT_INTERRUPTED = 130
