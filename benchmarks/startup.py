"""Measure what one TAB press costs: a keyrot completion request against `python -c 'import click'`.

Both commands run as fresh processes, interleaved round by round so background load falls on both
alike, after a few warm-up runs. The result is the ratio of their medians, measured in the same run,
so it does not depend on how fast the machine is. The script also runs the completion request once
under `python -X importtime` and lists any module it loaded from boto3, botocore or rich.

Usage: python benchmarks/startup.py [--rounds N] [--limit RATIO]
It prints a Markdown section for docs/benchmarks.md. It exits 1 if the ratio is over the limit
or a heavy module was loaded.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

KEYROT = Path(sys.executable).parent / "keyrot"
COMPLETION_WORDS = "keyrot deactivate --output "
COMPLETION_ENVIRONMENT = {
    "_KEYROT_COMPLETE": "bash_complete",
    "COMP_WORDS": COMPLETION_WORDS,
    "COMP_CWORD": "3",
}
COMPLETION_COMMAND = (
    f"_KEYROT_COMPLETE=bash_complete COMP_WORDS='{COMPLETION_WORDS}' COMP_CWORD=3 keyrot"
)
BASELINE_COMMAND = "python -c 'import click'"
HEAVY_PACKAGES = ("boto3", "botocore", "rich")
WARM_UP_RUNS = 3


def isolated_environment(folder: Path) -> dict[str, str]:
    """Return the current environment with empty AWS files and HOME in folder."""
    (folder / "config").write_text("")
    (folder / "credentials").write_text("")
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith(("AWS_", "_KEYROT_", "COMP_"))}
    environment.update(
        AWS_CONFIG_FILE=str(folder / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(folder / "credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        HOME=str(folder),
    )
    return environment


def seconds_to_run(command: list[str], environment: dict[str, str]) -> float:
    """Run command once, its output discarded, and return the wall-clock seconds it took."""
    started = time.perf_counter()
    subprocess.run(command, env=environment, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def measure(environment: dict[str, str], rounds: int) -> tuple[list[float], list[float]]:
    """Return the completion and baseline timings, interleaved round by round."""
    completion_environment = {**environment, **COMPLETION_ENVIRONMENT}
    completion = [str(KEYROT)]
    baseline = [sys.executable, "-c", "import click"]
    for _ in range(WARM_UP_RUNS):
        seconds_to_run(completion, completion_environment)
        seconds_to_run(baseline, environment)

    completion_times: list[float] = []
    baseline_times: list[float] = []
    for _ in range(rounds):
        completion_times.append(seconds_to_run(completion, completion_environment))
        baseline_times.append(seconds_to_run(baseline, environment))
    return completion_times, baseline_times


def heavy_modules(environment: dict[str, str]) -> list[str]:
    """Run the completion request under -X importtime; return modules from HEAVY_PACKAGES."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(KEYROT)],
        env={**environment, **COMPLETION_ENVIRONMENT},
        capture_output=True, text=True, check=True,
    )
    names = [line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
             if line.startswith("import time:") and "|" in line]
    return sorted(name for name in names if name.split(".")[0] in HEAVY_PACKAGES)


def report(completion: list[float], baseline: list[float], heavy: list[str], limit: float) -> str:
    """Return the Markdown section for docs/benchmarks.md."""
    completion_ms = statistics.median(completion) * 1000
    baseline_ms = statistics.median(baseline) * 1000
    ratio = completion_ms / baseline_ms
    verdict = "within" if ratio <= limit else "over"
    return "\n".join([
        "## Completion",
        "",
        f"Command: `python benchmarks/startup.py --rounds {len(completion)}`",
        f"Machine: {usable_cpus()} CPUs (nproc), {platform.machine()}, "
        f"Python {platform.python_version()}; date {datetime.now(UTC):%Y-%m-%d}",
        "",
        "| command | median | fastest |",
        "|---|---|---|",
        f"| `{COMPLETION_COMMAND}` | {completion_ms:.1f} ms | {min(completion) * 1000:.1f} ms |",
        f"| `{BASELINE_COMMAND}` | {baseline_ms:.1f} ms | {min(baseline) * 1000:.1f} ms |",
        "",
        f"Ratio of medians: {ratio:.2f}, {verdict} the limit of {limit:.2f}. "
        f"Modules loaded from {', '.join(HEAVY_PACKAGES)}: {', '.join(heavy) or 'none'}.",
    ])


def usable_cpus() -> int:
    """Return the CPUs this process may run on, as `nproc` counts them."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40, help="timed runs of each command")
    parser.add_argument("--limit", type=float, default=1.5,
                        help="highest acceptable ratio of the two medians")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="keyrot-startup-") as folder:
        environment = isolated_environment(Path(folder))
        completion, baseline = measure(environment, arguments.rounds)
        heavy = heavy_modules(environment)

    print(report(completion, baseline, heavy, arguments.limit))
    ratio = statistics.median(completion) / statistics.median(baseline)
    return 0 if ratio <= arguments.limit and not heavy else 1


if __name__ == "__main__":
    sys.exit(main())
