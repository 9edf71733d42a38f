"""The keyrot click group, its lazy command table and the one handler for errors and exit codes."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any, NoReturn

import click

from keyrot import __version__
from keyrot.errors import EXIT_INTERRUPTED, KeyrotError

# Command name to "module:attribute". Modules load only when their command runs or its help is
# shown, which keeps `keyrot --help` and TAB completion fast.
COMMANDS: dict[str, str] = {
    "list": "keyrot.commands.status:list_keys",
    "activate": "keyrot.commands.status:activate",
    "deactivate": "keyrot.commands.status:deactivate",
    "rotate": "keyrot.commands.rotate:rotate",
    "audit": "keyrot.commands.audit:audit",
    "delete": "keyrot.commands.delete:delete",
}


class KeyrotGroup(click.Group):
    """The top-level group: imports each command's module on first use, and maps every expected
    failure to a one-line message and its documented exit status."""

    def main(  # type: ignore[override]
        self, args: list[str] | None = None, prog_name: str | None = None, **extra: Any
    ) -> NoReturn:
        extra.pop("standalone_mode", None)
        try:
            result = super().main(args=args, prog_name=prog_name, standalone_mode=False, **extra)
        except KeyrotError as error:
            _fail(error.message, error.details, error.exit_code)
        except click.UsageError as error:
            _fail(_usage_message(error), [], error.exit_code)
        except click.ClickException as error:
            _fail(_sentence_case(error.format_message()), [], error.exit_code)
        except (KeyboardInterrupt, click.Abort):
            if sys.stderr.isatty():
                # Ctrl-C at a prompt leaves the cursor after "[y/N]: ".
                click.echo(err=True)
            _fail("interrupted", [], EXIT_INTERRUPTED)
        except BrokenPipeError:
            # The reader of stdout left, as with `keyrot list | head -1`, so print nothing more.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*COMMANDS, *super().list_commands(ctx)])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = target.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=KeyrotGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="keyrot")
@click.pass_context
def keyrot(ctx: click.Context) -> None:
    """Deactivate, activate and rotate AWS IAM access keys without locking yourself out.

    Credentials, profiles, regions and endpoints resolve as they do for boto3 and the AWS CLI.
    Results go to stdout; messages, warnings and logs go to stderr.
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def main() -> None:
    """Run keyrot as the console script does."""
    keyrot.main(prog_name="keyrot")


def _usage_message(error: click.UsageError) -> str:
    message = _sentence_case(error.format_message()).rstrip(".")
    context = error.ctx
    if isinstance(error, click.NoSuchOption) and context is not None and context.parent is None:
        # Options such as --output belong to each command, not to the keyrot group.
        option = error.option_name
        return f"{message}; options go after the command name, as in: keyrot list {option} ..."
    if context is not None and message.endswith((")", "?")):
        return f"{message} See '{context.command_path} --help'."
    if context is not None:
        return f"{message}; see '{context.command_path} --help'"
    return message


def _sentence_case(message: str) -> str:
    # click starts its messages with a capital; keyrot's follow "error: " in lower case.
    return message[:1].lower() + message[1:]


def _fail(message: str, details: list[str], exit_code: int) -> NoReturn:
    click.echo(f"keyrot: error: {message}", err=True)
    for line in details:
        click.echo(f"  {line}", err=True)
    sys.exit(exit_code)
