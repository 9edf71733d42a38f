"""A TAB press runs the installed `keyrot`: it must load no AWS SDK or rich and send no request."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from keyrot.cli import COMMANDS

KEYROT = Path(sys.executable).parent / "keyrot"
HEAVY_PACKAGES = ("boto3", "botocore", "rich", "s3transfer", "urllib3")
CREDENTIALS = "[work]\naws_access_key_id = AKIAWORKWORK00000001\n"


def imported_modules(command_line: str) -> set[str]:
    """Run one bash completion request with -X importtime; return every module it imported."""
    words = command_line.split(" ")
    environment = {
        **os.environ,
        "_KEYROT_COMPLETE": "bash_complete",
        "COMP_WORDS": command_line,
        "COMP_CWORD": str(len(words) - 1),
    }
    return modules_imported_by([str(KEYROT)], environment)


def modules_imported_by(arguments: list[str], environment: dict[str, str]) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *arguments], capture_output=True, text=True,
        env=environment, timeout=60, check=False,
    )

    assert result.returncode == 0, result.stderr
    # Each line reads "import time:  self | cumulative | indented.module.name".
    return {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def heavy(modules: set[str]) -> list[str]:
    return sorted(name for name in modules if name.split(".")[0] in HEAVY_PACKAGES)


def test_import_check_sees_imports():
    """The check itself works: it finds click in a completion and rich where rich is loaded."""
    loads_rich = modules_imported_by(["-c", "import rich.console"], dict(os.environ))

    assert "click.core" in imported_modules("keyrot de")
    assert heavy(loads_rich) != []


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("tail", ["", "--", "--output ", "--profile "])
def test_completion_loads_no_sdk(command, tail, aws_environment):
    (aws_environment / "credentials").write_text(CREDENTIALS)

    modules = imported_modules(f"keyrot {command} {tail}")

    assert heavy(modules) == []


def test_command_name_completion_loads_no_sdk():
    """Listing the commands loads every command module for its short help."""
    assert heavy(imported_modules("keyrot ")) == []


def test_completion_sends_no_request(proxy, aws_environment):
    (aws_environment / "credentials").write_text(CREDENTIALS)

    for command in COMMANDS:
        imported_modules(f"keyrot {command} --profile work ")
        imported_modules(f"keyrot {command} --profile ")

    assert proxy.requests == []
