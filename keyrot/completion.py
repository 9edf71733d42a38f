"""Shell-completion sources that read local files only: no boto3, no network on a TAB press."""

from __future__ import annotations

import configparser
import os
from pathlib import Path

import click
from click.shell_completion import CompletionItem


def aws_file_paths() -> tuple[Path, Path]:
    """Return the AWS config and shared credentials file paths, as the AWS CLI resolves them."""
    config = os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config"
    credentials = os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials"
    return Path(config).expanduser(), Path(credentials).expanduser()


def profile_names() -> list[str]:
    """List the profile names in the config and credentials files, in file order, once each."""
    config_path, credentials_path = aws_file_paths()
    names: dict[str, None] = {}
    for section in _sections(config_path):
        if section == "default":
            names["default"] = None
        elif section.startswith("profile "):
            names[section.removeprefix("profile ").strip()] = None
    for section in _sections(credentials_path):
        names[section] = None
    return list(names)


def complete_profiles(
    _context: click.Context, _parameter: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    return [CompletionItem(name) for name in profile_names() if name.startswith(incomplete)]


def _sections(path: Path) -> list[str]:
    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read(path, encoding="utf-8")
    except (OSError, configparser.Error, UnicodeDecodeError):
        # A file completion cannot read offers nothing; the command itself reports the problem.
        return []
    return parser.sections()
