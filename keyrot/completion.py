"""Shell-completion sources that read local files only: no boto3, no network on a TAB press."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click
from click.shell_completion import CompletionItem

from keyrot.validation import ACCESS_KEY_ID_PATTERN

if TYPE_CHECKING:
    from configparser import RawConfigParser, SectionProxy

CONFIG_PROFILE_PREFIX = "profile "


@dataclass(frozen=True)
class ProfileKey:
    """An access key ID found in a profile of the AWS config or credentials file."""

    profile: str
    access_key_id: str


def aws_file_paths() -> tuple[Path, Path]:
    """Return the AWS config and shared credentials file paths, as the AWS CLI resolves them."""
    config = os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config"
    credentials = os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials"
    return Path(config).expanduser(), Path(credentials).expanduser()


def profile_names() -> list[str]:
    """List the profile names in the config and credentials files, in file order, once each."""
    config_path, credentials_path = aws_file_paths()
    names: dict[str, None] = {}
    for section in _read(config_path).sections():
        name = _config_profile_name(section)
        if name is not None:
            names[name] = None
    for section in _read(credentials_path).sections():
        names[section] = None
    return list(names)


def profile_keys() -> list[ProfileKey]:
    """List the aws_access_key_id values of every profile, credentials file first.

    The config file may hold keys too, so it is read after the credentials file. Values that are
    not well-formed access key IDs are left out.
    """
    config_path, credentials_path = aws_file_paths()
    found: list[ProfileKey] = []
    for profile, section in _profiles(_read(credentials_path), in_config=False):
        found.extend(_section_key(profile, section))
    for profile, section in _profiles(_read(config_path), in_config=True):
        found.extend(_section_key(profile, section))
    return found


def complete_profiles(
    _context: click.Context, _parameter: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    return [CompletionItem(name) for name in profile_names() if name.startswith(incomplete)]


def complete_access_key_ids(
    context: click.Context, _parameter: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Offer the access key IDs from the AWS files, the chosen profile's first.

    Key IDs already on the command line are left out. The description names the profile, which
    zsh and fish show beside each candidate.
    """
    chosen = context.params.get("profile") or os.environ.get("AWS_PROFILE") or "default"
    typed = set(context.params.get("key_ids") or ())
    keys = sorted(profile_keys(), key=lambda key: key.profile != chosen)

    items: dict[str, CompletionItem] = {}
    for key in keys:
        key_id = key.access_key_id
        if key_id.startswith(incomplete) and key_id not in typed and key_id not in items:
            items[key_id] = CompletionItem(key_id, help=f"profile {key.profile}")
    return list(items.values())


def _config_profile_name(section: str) -> str | None:
    if section == "default":
        return "default"
    if section.startswith(CONFIG_PROFILE_PREFIX):
        return section.removeprefix(CONFIG_PROFILE_PREFIX).strip()
    # Other config sections, such as [sso-session NAME] or [services NAME], are not profiles.
    return None


def _profiles(parser: RawConfigParser, *, in_config: bool) -> list[tuple[str, SectionProxy]]:
    profiles = []
    for section in parser.sections():
        name = _config_profile_name(section) if in_config else section
        if name is not None:
            profiles.append((name, parser[section]))
    return profiles


def _section_key(profile: str, section: SectionProxy) -> list[ProfileKey]:
    # RawConfigParser lowercases option names, so AWS_ACCESS_KEY_ID matches too.
    value = (section.get("aws_access_key_id") or "").strip()
    if not ACCESS_KEY_ID_PATTERN.fullmatch(value):
        return []
    return [ProfileKey(profile=profile, access_key_id=value)]


def _read(path: Path) -> RawConfigParser:
    # Imported here because every command imports this module, and most never complete a profile.
    import configparser

    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (OSError, configparser.Error, UnicodeDecodeError):
        # A file completion cannot read offers nothing; the command itself reports the problem.
        return configparser.RawConfigParser()
    return parser
