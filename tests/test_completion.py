"""Shell completion: the generated scripts, what they offer in real shells, and where it comes from.

The shell tests source the committed scripts from completions/ in bash, zsh and fish, with the
installed `keyrot` console script first on PATH, so each TAB press runs click's completion protocol
end to end. A shell that is not installed is skipped; CI installs all three.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.shell_completion import (
    BashComplete,
    CompletionItem,
    ZshComplete,
    get_completion_class,
)

from keyrot.cli import COMMANDS, keyrot

ROOT = Path(__file__).resolve().parent.parent
COMPLETIONS = ROOT / "completions"
BIN = Path(sys.executable).parent
OUTPUT_FORMATS = ["table", "json", "text"]

WORK_KEY = "AKIAWORKWORKWORK0001"
DEFAULT_KEY = "AKIADEFAULTDEFAULT02"
CONFIG_KEY = "AKIACONFIGCONFIG0003"


def shell_environment() -> dict[str, str]:
    """The test's isolated environment with the installed keyrot first on PATH."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def run_shell(
    shell: str, script: str, flags: list[str] | None = None, **environment: str
) -> list[str]:
    """Run script in shell, by default with no user start-up files; return its stdout lines."""
    executable = shutil.which(shell)
    if executable is None:
        pytest.skip(f"{shell} is not installed")
    if flags is None:
        flags = {"bash": ["--norc", "--noprofile"], "zsh": ["-f"], "fish": ["--no-config"]}[shell]

    result = subprocess.run(
        [executable, *flags, "-c", script], capture_output=True, text=True,
        env={**shell_environment(), **environment}, cwd=ROOT, timeout=60, check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout.splitlines()


def bash_complete(*words: str) -> list[str]:
    """Press TAB in bash after words; the last word is the one being completed."""
    quoted = " ".join(shlex.quote(word) for word in words)
    script = f"""
        source completions/keyrot.bash
        spec=$(complete -p keyrot)
        function_name=${{spec##*-F }}
        function_name=${{function_name%% *}}
        COMP_WORDS=({quoted})
        COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
        COMP_LINE="${{COMP_WORDS[*]}}"
        COMP_POINT=${{#COMP_LINE}}
        COMPREPLY=()
        "$function_name" keyrot "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
        printf '%s\\n' "${{COMPREPLY[@]}}"
    """
    return [line for line in run_shell("bash", script) if line]


def zsh_complete(*words: str) -> list[str]:
    """Run the zsh completion function after words, recording what it hands to zsh.

    A non-interactive zsh has no completion system. So compdef, compadd and _describe are
    replaced by functions that print their candidates, and everything else is the generated script.
    """
    quoted = " ".join(shlex.quote(word) for word in words)
    script = f"""
        compdef() {{ : }}
        compadd() {{ print -rl -- ${{(P)${{@[-1]}}}} }}
        _describe() {{ print -rl -- ${{(P)3}} }}
        source completions/_keyrot
        words=({quoted})
        CURRENT=${{#words}}
        _keyrot_completion
    """
    return run_shell("zsh", script)


def fish_complete(command_line: str) -> list[str]:
    """Ask fish what it would offer for command_line, without descriptions."""
    script = f"source completions/keyrot.fish; complete --do-complete {shlex.quote(command_line)}"
    return [line.split("\t")[0] for line in run_shell("fish", script)]


def complete(*words: str) -> list[CompletionItem]:
    """Ask the click app directly, as the scripts do; the last word is being completed."""
    completer = BashComplete(keyrot, {}, "keyrot", "_KEYROT_COMPLETE")
    return completer.get_completions(list(words[:-1]), words[-1])


def values(items: list[CompletionItem]) -> list[str]:
    return [item.value for item in items]


@pytest.fixture
def aws_files(aws_environment: Path) -> Path:
    """AWS files with three profiles that hold keys and one config section that is no profile."""
    (aws_environment / "credentials").write_text(
        "[work]\n"
        f"aws_access_key_id = {WORK_KEY}\n"
        "aws_secret_access_key = work-secret\n"
        "\n"
        "[default]\n"
        f"AWS_ACCESS_KEY_ID = {DEFAULT_KEY}\n"
        "AWS_SECRET_ACCESS_KEY = default-secret\n"
    )
    (aws_environment / "config").write_text(
        "[default]\n"
        "region = us-east-1\n"
        "\n"
        "[profile ci]\n"
        f"aws_access_key_id = {CONFIG_KEY}\n"
        "aws_secret_access_key = ci-secret\n"
        "\n"
        "[sso-session corp]\n"
        "sso_region = us-east-1\n"
    )
    return aws_environment


def test_committed_scripts_are_current():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate_completions.py"), "--check"],
        capture_output=True, text=True, timeout=60, check=False,
    )

    assert result.returncode == 0, (
        f"{result.stderr}completions/ is stale; run python scripts/generate_completions.py"
    )


@pytest.mark.parametrize(("shell", "name"), [("bash", "keyrot.bash"), ("zsh", "_keyrot"),
                                           ("fish", "keyrot.fish")])
def test_scripts_hold_no_commands(shell, name):
    """The scripts ask keyrot on each TAB press, so a new command needs no regeneration.

    A group with no commands at all yields the same script body as keyrot does.
    """
    completion_class = get_completion_class(shell)
    assert completion_class is not None
    empty = completion_class(click.Group("keyrot"), {}, "keyrot", "_KEYROT_COMPLETE").source()
    body = empty.partition("\n")[2] if shell == "zsh" else empty

    text = (COMPLETIONS / name).read_text()

    assert "_KEYROT_COMPLETE=" in text
    assert body in text


def test_bash_completes_command_prefix():
    expected = sorted(name for name in COMMANDS if name.startswith("de"))

    offered = bash_complete("keyrot", "de")

    assert "deactivate" in expected
    assert sorted(offered) == expected


def test_bash_completes_output_choices():
    assert bash_complete("keyrot", "deactivate", "--output", "") == OUTPUT_FORMATS


def test_bash_completes_every_command():
    assert sorted(bash_complete("keyrot", "")) == sorted(COMMANDS)


def test_bash_completes_profiles(aws_files):
    assert bash_complete("keyrot", "list", "--profile", "") == ["default", "ci", "work"]
    assert bash_complete("keyrot", "list", "--profile", "w") == ["work"]


def test_bash_completes_key_ids(aws_files):
    offered = bash_complete("keyrot", "deactivate", "--profile", "work", "")

    assert offered == [WORK_KEY, DEFAULT_KEY, CONFIG_KEY]


def test_bash_completion_loads_from_user_folder(tmp_path):
    """Installed as keyrot in bash-completion's user folder, the script loads on first use."""
    framework = Path("/usr/share/bash-completion/bash_completion")
    if not framework.exists():
        pytest.skip("bash-completion is not installed")
    folder = tmp_path / "data" / "bash-completion" / "completions"
    folder.mkdir(parents=True)
    shutil.copy(COMPLETIONS / "keyrot.bash", folder / "keyrot")

    loaded = run_shell("bash", f"source {framework}; __load_completion keyrot; complete -p keyrot",
                       XDG_DATA_HOME=str(tmp_path / "data"))

    assert loaded == ["complete -o nosort -F _keyrot_completion keyrot"]


def test_zsh_completes_command_prefix():
    offered = zsh_complete("keyrot", "de")

    names = sorted(line.split(":")[0] for line in offered)
    assert names == sorted(name for name in COMMANDS if name.startswith("de"))


def test_zsh_completes_output_choices():
    assert zsh_complete("keyrot", "deactivate", "--output", "") == OUTPUT_FORMATS


def test_zsh_describes_key_ids(aws_files):
    offered = zsh_complete("keyrot", "activate", "AKIAW")

    assert offered == [f"{WORK_KEY}:profile work"]


def test_fish_completes_command_prefix():
    offered = fish_complete("keyrot de")

    assert sorted(offered) == sorted(name for name in COMMANDS if name.startswith("de"))


def test_fish_completes_output_choices():
    assert sorted(fish_complete("keyrot deactivate --output ")) == sorted(OUTPUT_FORMATS)


def test_fish_completes_profiles(aws_files):
    assert sorted(fish_complete("keyrot list --profile ")) == ["ci", "default", "work"]


def test_zsh_fpath_install_registers_keyrot():
    """Installed as _keyrot in a folder on fpath, compinit picks the script up by itself."""
    script = (
        "fpath=(completions $fpath); autoload -Uz compinit; compinit -D -u; print $_comps[keyrot]"
    )

    assert run_shell("zsh", script) == ["_keyrot"]


def test_fish_loads_from_completions_folder(tmp_path):
    """Installed as keyrot.fish in fish's completions folder, fish loads it on first use."""
    folder = tmp_path / "config" / "fish" / "completions"
    folder.mkdir(parents=True)
    shutil.copy(COMPLETIONS / "keyrot.fish", folder)

    offered = run_shell("fish", "complete --do-complete 'keyrot deac'", flags=[],
                        XDG_CONFIG_HOME=str(tmp_path / "config"),
                        XDG_DATA_HOME=str(tmp_path / "data"))

    assert [line.split("\t")[0] for line in offered] == ["deactivate"]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_command_has_help_and_completes(command):
    loaded = keyrot.get_command(None, command)  # type: ignore[arg-type]
    offered = {item.value: item.help for item in complete("")}

    assert loaded is not None
    assert (loaded.help or "").strip(), f"{command} has no help text"
    assert command in offered
    assert offered[command], f"{command} has no short help for zsh and fish to show"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_command_completes_shared_options(command):
    offered = values(complete(command, "--"))

    for option in ("--profile", "--output", "--no-color", "--verbose", "--quiet", "--help"):
        assert option in offered, f"keyrot {command} does not offer {option}"
    assert values(complete(command, "--output", "")) == OUTPUT_FORMATS


def key_id_arguments(command: str) -> list[click.Argument]:
    loaded = keyrot.get_command(None, command)  # type: ignore[arg-type]
    assert loaded is not None
    return [parameter for parameter in loaded.params
            if isinstance(parameter, click.Argument)
            and "ACCESS_KEY_ID" in (parameter.metavar or parameter.name or "").upper()]


@pytest.mark.parametrize(
    "command", [name for name in sorted(COMMANDS) if key_id_arguments(name)]
)
def test_key_id_argument_completes(command, aws_files):
    assert values(complete(command, "AKIAW")) == [WORK_KEY]


def test_key_id_commands_found():
    """The list above is not empty by accident: the status commands take key IDs."""
    assert key_id_arguments("deactivate") != []
    assert key_id_arguments("list") == []


def test_zsh_items_carry_command_help():
    completer = ZshComplete(keyrot, {}, "keyrot", "_KEYROT_COMPLETE")

    lines = [completer.format_completion(item) for item in complete("deac")]

    assert lines == ["plain\ndeactivate\nSet one or more access keys to Inactive..."]


def test_profiles_come_from_both_files(aws_files):
    assert values(complete("list", "--profile", "")) == ["default", "ci", "work"]


def test_rotate_save_profile_completes_profiles(aws_files):
    assert values(complete("rotate", "--save-profile", "")) == ["default", "ci", "work"]


def test_key_ids_put_chosen_profile_first(aws_files):
    assert values(complete("deactivate", "--profile", "ci", "")) == [
        CONFIG_KEY, WORK_KEY, DEFAULT_KEY,
    ]


def test_key_ids_follow_aws_profile(aws_files, monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "work")

    assert values(complete("activate", ""))[0] == WORK_KEY


def test_key_ids_default_profile_first(aws_files):
    assert values(complete("activate", ""))[0] == DEFAULT_KEY


def test_key_ids_skip_typed_ones(aws_files):
    assert values(complete("deactivate", WORK_KEY, "")) == [DEFAULT_KEY, CONFIG_KEY]


def test_key_ids_match_prefix(aws_files):
    assert values(complete("deactivate", "AKIAD")) == [DEFAULT_KEY]


def test_key_ids_name_their_profile(aws_files):
    items = complete("deactivate", "AKIAC")

    assert [item.help for item in items] == ["profile ci"]


def test_key_ids_skip_malformed_values(aws_environment):
    (aws_environment / "credentials").write_text(
        "[short]\naws_access_key_id = AKIA\n[template]\naws_access_key_id = ${KEY}\n"
        f"[good]\naws_access_key_id = {WORK_KEY}\n"
    )

    assert values(complete("deactivate", "")) == [WORK_KEY]


def test_duplicate_key_offered_once(aws_environment):
    (aws_environment / "credentials").write_text(
        f"[a]\naws_access_key_id = {WORK_KEY}\n[b]\naws_access_key_id = {WORK_KEY}\n"
    )

    assert values(complete("deactivate", "")) == [WORK_KEY]


def test_unreadable_files_offer_nothing(aws_environment):
    (aws_environment / "credentials").write_text("aws_access_key_id = no section header\n")
    (aws_environment / "config").write_bytes(b"[default]\nregion = \xff\xfe\n")

    assert complete("list", "--profile", "") == []
    assert complete("deactivate", "") == []


def test_missing_files_offer_nothing(aws_environment, monkeypatch):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(aws_environment / "absent-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(aws_environment / "absent-credentials"))

    assert complete("list", "--profile", "") == []


def test_user_option_offers_no_files(aws_files):
    """No local file lists IAM user names, so --user offers nothing rather than file names."""
    assert complete("deactivate", "--user", "") == []
