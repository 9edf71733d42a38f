"""Measure what one TAB press costs: a keyrot completion request against `python -c 'import click'`.

Both commands run as fresh processes, interleaved round by round so background load falls on both
alike, after a few warm-up rounds. The result is the ratio of their medians, measured in the same
run, so it does not depend on how fast the machine is. The script also runs the completion request
once under `python -X importtime` and lists any module it loaded from boto3, botocore or rich.

An installed keyrot has compiled bytecode, as pip writes it at install time. So the timed runs
cache bytecode in a temporary folder (PYTHONPYCACHEPREFIX) even where PYTHONDONTWRITEBYTECODE is
set. A second pair of measurements without any bytecode cache is reported for comparison.

Usage: python benchmarks/startup.py [--rounds N] [--limit RATIO]
It prints a Markdown section for docs/benchmarks.md. It exits 1 if the ratio is over the limit
or a heavy module was loaded.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from common import BIN, interleaved_medians, isolated_environment, machine_line, time_command

COMPLETION_WORDS = "keyrot deactivate --output "
COMPLETION_ENVIRONMENT = {
    "_KEYROT_COMPLETE": "bash_complete",
    "COMP_WORDS": COMPLETION_WORDS,
    "COMP_CWORD": "3",
}
COMPLETION = f"_KEYROT_COMPLETE=bash_complete COMP_WORDS='{COMPLETION_WORDS}' COMP_CWORD=3 keyrot"
BASELINE = "python -c 'import click'"
HEAVY_PACKAGES = ("boto3", "botocore", "rich")
WARM_UP_ROUNDS = 3
# A completion request sends nothing; should one ever try, it stays on loopback and fails at once.
UNUSED_ENDPOINT = "http://127.0.0.1:9"


def medians(environment: dict[str, str], rounds: int) -> dict[str, float]:
    """Return the median seconds of the completion request and of the baseline."""
    completion_environment = {**environment, **COMPLETION_ENVIRONMENT}
    runners = {
        COMPLETION: lambda: time_command([str(BIN / "keyrot")], completion_environment),
        BASELINE: lambda: time_command([sys.executable, "-c", "import click"], environment),
    }
    interleaved_medians(runners, WARM_UP_ROUNDS)
    return interleaved_medians(runners, rounds)


def without_bytecode_cache(environment: dict[str, str]) -> dict[str, str]:
    """Return environment with no bytecode cache, as an editable install may run."""
    uncached = {name: value for name, value in environment.items()
                if name != "PYTHONPYCACHEPREFIX"}
    uncached["PYTHONDONTWRITEBYTECODE"] = "1"
    return uncached


def heavy_modules(environment: dict[str, str]) -> list[str]:
    """Run the completion request under -X importtime; return modules from HEAVY_PACKAGES."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(BIN / "keyrot")],
        env={**environment, **COMPLETION_ENVIRONMENT},
        capture_output=True, text=True, check=True,
    )
    names = [line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
             if line.startswith("import time:") and "|" in line]
    return sorted(name for name in names if name.split(".")[0] in HEAVY_PACKAGES)


def report(
    times: dict[str, float],
    uncached_times: dict[str, float],
    heavy: list[str],
    rounds: int,
    limit: float,
) -> str:
    """Return the Markdown section for docs/benchmarks.md."""
    ratio = times[COMPLETION] / times[BASELINE]
    uncached_ratio = uncached_times[COMPLETION] / uncached_times[BASELINE]
    verdict = "within" if ratio <= limit else "over"
    return "\n".join([
        "## Completion",
        "",
        f"Command: `python benchmarks/startup.py --rounds {rounds}`; {machine_line()}; "
        f"medians of {rounds} interleaved runs after {WARM_UP_ROUNDS} warm-up rounds.",
        "",
        "| command | median, bytecode cached | median, no bytecode cache |",
        "|---|---|---|",
        f"| `{COMPLETION}` | {times[COMPLETION] * 1000:.1f} ms "
        f"| {uncached_times[COMPLETION] * 1000:.1f} ms |",
        f"| `{BASELINE}` | {times[BASELINE] * 1000:.1f} ms "
        f"| {uncached_times[BASELINE] * 1000:.1f} ms |",
        f"| ratio | {ratio:.2f} | {uncached_ratio:.2f} |",
        "",
        f"With bytecode cached, as in an installed keyrot, the ratio is {verdict} the limit of "
        f"{limit:.2f}. Modules loaded from {', '.join(HEAVY_PACKAGES)}: "
        f"{', '.join(heavy) or 'none'}.",
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40, help="timed runs of each command")
    parser.add_argument("--limit", type=float, default=1.5,
                        help="highest acceptable ratio of the two medians")
    arguments = parser.parse_args()

    with isolated_environment(UNUSED_ENDPOINT) as environment:
        # isolated_environment caches bytecode, as an installed keyrot has it.
        times = medians(environment, arguments.rounds)
        uncached_times = medians(without_bytecode_cache(environment), arguments.rounds)
        heavy = heavy_modules(environment)

    print(report(times, uncached_times, heavy, arguments.rounds, arguments.limit))
    ratio = times[COMPLETION] / times[BASELINE]
    return 0 if ratio <= arguments.limit and not heavy else 1


if __name__ == "__main__":
    sys.exit(main())
