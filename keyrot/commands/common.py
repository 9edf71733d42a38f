"""Options shared by every command, and the typed settings they produce."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import click

from keyrot.completion import complete_access_key_ids, complete_profiles
from keyrot.errors import CredentialsError, InvalidInputError
from keyrot.validation import (
    check_access_key_id,
    check_endpoint_url,
    check_mfa_code,
    check_region,
    check_user_name,
)

if TYPE_CHECKING:
    from keyrot.iam import ConnectionSettings, IamService
    from keyrot.render import Output

OutputFormat = Literal["table", "json", "text"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = ("table", "json", "text")

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class CommonOptions:
    """The parsed values of the options every command accepts."""

    profile: str | None
    region: str | None
    endpoint_url: str | None
    timeout: float
    output: OutputFormat
    color: bool
    verbose: bool
    quiet: bool
    dry_run: bool
    assume_yes: bool
    mfa_code: str | None

    def connection(self) -> ConnectionSettings:
        from keyrot.iam import ConnectionSettings

        return ConnectionSettings(
            profile=self.profile,
            region=self.region,
            endpoint_url=self.endpoint_url,
            timeout=self.timeout,
            log_api_calls=self.verbose,
            role_mfa_code=self.role_mfa_code,
        )

    def role_mfa_code(self, question: str) -> str:
        """Return the MFA code for assuming a role profile's role: --mfa-code, else a prompt."""
        if self.mfa_code is not None:
            return self.mfa_code
        ask = self.code_prompter()
        if ask is None:
            raise CredentialsError(
                "this profile assumes a role that requires MFA and there is no terminal to ask "
                "for a code on; pass --mfa-code CODE"
            )
        return ask(question)

    def connect(
        self, settings: ConnectionSettings | None = None, *, with_mfa: bool = True
    ) -> IamService:
        """Set up logging and open the IAM service for these options (or for settings).

        When the profile has an mfa_serial and long-term keys, the service signs with one MFA
        session. The rotate workflow passes with_mfa=False because it opens its own session and
        also needs the long-term key.
        """
        from keyrot.iam import connect
        from keyrot.mfa import signed_with_mfa

        configure_logging(verbose=self.verbose)
        service = connect(settings or self.connection())
        if not with_mfa:
            return service
        return signed_with_mfa(service, self.mfa_code, self.code_prompter(), self.writer().warn)

    def writer(self) -> Output:
        from keyrot.render import Output

        return Output(fmt=self.output, color=self.color, quiet=self.quiet)

    def confirmer(self) -> Callable[[str], bool] | None:
        """Return a yes/no prompt on stderr, or None when there is no terminal to ask on."""
        if not sys.stdin.isatty():
            return None
        return functools.partial(click.confirm, default=False, err=True)

    def code_prompter(self) -> Callable[[str], str] | None:
        """Return a prompt for an MFA code on stderr that repeats the question after an invalid
        code, or None when there is no terminal to ask on."""
        if not sys.stdin.isatty():
            return None
        checked = functools.partial(_checked, check_mfa_code)
        return lambda question: str(click.prompt(question, err=True, value_proc=checked))


def configure_logging(*, verbose: bool) -> None:
    """Send keyrot's own log records to stderr; botocore's stay quiet because they hold bodies."""
    # Imported here so a TAB press, which never logs, does not pay for the logging module.
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("keyrot: %(message)s"))
    package_logger = logging.getLogger("keyrot")
    package_logger.handlers[:] = [handler]
    package_logger.setLevel(logging.INFO if verbose else logging.WARNING)
    package_logger.propagate = False
    logging.getLogger("botocore").setLevel(logging.WARNING)


def seconds_type(minimum: float) -> click.FloatRange:
    """Return a click type for a duration, named so its errors read "not a valid number of
    seconds" instead of click's "not a valid float range"."""
    duration = click.FloatRange(min=minimum)
    duration.name = "number of seconds"
    return duration


def days_type() -> click.IntRange:
    """Return a click type for a whole number of days, at least 0."""
    days = click.IntRange(min=0)
    days.name = "whole number of days"
    return days


def common_options(command: F) -> F:
    """Add the shared AWS and output options, passed to the command as `options`."""

    @click.option("--profile", metavar="NAME", shell_complete=complete_profiles,
                  help="Named profile from the AWS config and credentials files "
                  "[default: AWS_PROFILE, or the default profile].")
    @click.option("--region", metavar="REGION", callback=_option_checker(check_region),
                  help="AWS region; IAM is global, the region picks the partition "
                  "(aws, aws-cn, aws-us-gov) [default: AWS_REGION or the profile's region].")
    @click.option("--endpoint-url", metavar="URL", callback=_option_checker(check_endpoint_url),
                  help="Send IAM and STS requests to this URL, such as a local test endpoint "
                  "[default: AWS_ENDPOINT_URL_IAM, AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL].")
    @click.option("--timeout", type=seconds_type(minimum=0.1), default=10.0, show_default=True,
                  metavar="SECONDS", help="Seconds to wait to connect and for each response.")
    @click.option("--output", "output_format", type=click.Choice(OUTPUT_FORMATS),
                  default="table", show_default=True,
                  help="Result format on stdout: rich tables, one JSON document, or "
                  "tab-separated lines.")
    @click.option("--no-color", is_flag=True, help="Print no colour (also set by NO_COLOR).")
    @click.option("-v", "--verbose", is_flag=True,
                  help="Log each API call, retry and wait to stderr, with request IDs.")
    @click.option("-q", "--quiet", is_flag=True,
                  help="Print nothing but errors; --output json or text still prints its result.")
    @click.option("--dry-run", is_flag=True, help="Show the plan and the tables; change nothing.")
    @click.option("-y", "--yes", "assume_yes", is_flag=True,
                  help="Answer yes to confirmation prompts; it never overrides a refusal made "
                  "for safety.")
    @click.option("--mfa-code", metavar="CODE", callback=_option_checker(check_mfa_code),
                  help="One-time code (6 digits) from the MFA device named by the profile's "
                  "mfa_serial [default: ask on the terminal when the profile has one].")
    @functools.wraps(command)
    def wrapper(
        *args: Any,
        profile: str | None,
        region: str | None,
        endpoint_url: str | None,
        timeout: float,
        output_format: OutputFormat,
        no_color: bool,
        verbose: bool,
        quiet: bool,
        dry_run: bool,
        assume_yes: bool,
        mfa_code: str | None,
        **kwargs: Any,
    ) -> Any:
        if verbose and quiet:
            raise InvalidInputError("--verbose and --quiet cannot be used together; pick one")
        options = CommonOptions(
            profile=profile,
            region=region,
            endpoint_url=endpoint_url,
            timeout=timeout,
            output=output_format,
            color=not no_color and not os.environ.get("NO_COLOR"),
            verbose=verbose,
            quiet=quiet,
            dry_run=dry_run,
            assume_yes=assume_yes,
            mfa_code=mfa_code,
        )
        return command(*args, options=options, **kwargs)

    return cast(F, wrapper)


def user_option(command: F) -> F:
    return click.option(
        "--user",
        "user_name",
        metavar="NAME",
        callback=_user_name_callback,
        help="IAM user name whose keys to act on [default: the user that signs the request].",
    )(command)


def key_ids_argument(*, required: bool) -> Callable[[F], F]:
    return click.argument(
        "key_ids",
        metavar="ACCESS_KEY_ID..." if required else "[ACCESS_KEY_ID]...",
        nargs=-1,
        required=required,
        callback=_key_ids_callback,
        shell_complete=complete_access_key_ids,
    )


def _option_checker(check: Callable[[str], str]) -> Callable[..., str | None]:
    """Wrap a validation function as a click callback that passes None through."""

    def callback(
        _context: click.Context, _parameter: click.Parameter, value: str | None
    ) -> str | None:
        return None if value is None else _checked(check, value)

    return callback


_user_name_callback = _option_checker(check_user_name)


def _key_ids_callback(
    _context: click.Context, _parameter: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    checked = tuple(_checked(check_access_key_id, value) for value in values)
    return tuple(dict.fromkeys(checked))


def _checked(check: Callable[[str], str], value: str) -> str:
    try:
        return check(value)
    except InvalidInputError as error:
        raise click.BadParameter(error.message) from None
