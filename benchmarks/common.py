"""Helpers shared by the benchmark scripts: a local moto server, a clean environment, timing."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FAKE_ACCESS_KEY_ID = "AKIABENCHBENCH000000"
FAKE_SECRET = "benchmark-secret-not-real"


@contextmanager
def local_endpoint() -> Iterator[str]:
    """Start tests/moto_launcher.py on 127.0.0.1 and yield its URL."""
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "moto_launcher.py")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def isolated_environment(endpoint: str) -> Iterator[dict[str, str]]:
    """Yield an environment with fake credentials, empty AWS files, the local endpoint and a
    bytecode cache."""
    with tempfile.TemporaryDirectory(prefix="keyrot-bench-") as folder:
        (Path(folder) / "config").write_text("")
        (Path(folder) / "credentials").write_text("")
        # An installed keyrot has bytecode that pip compiled at install time, so every run
        # caches bytecode (in this folder) even where PYTHONDONTWRITEBYTECODE is set.
        environment = {name: value for name, value in os.environ.items()
                       if not name.startswith("AWS_") and name != "PYTHONDONTWRITEBYTECODE"}
        environment["PYTHONPYCACHEPREFIX"] = str(Path(folder) / "pycache")
        environment.update(
            AWS_ACCESS_KEY_ID=FAKE_ACCESS_KEY_ID,
            AWS_SECRET_ACCESS_KEY=FAKE_SECRET,
            AWS_CONFIG_FILE=str(Path(folder) / "config"),
            AWS_SHARED_CREDENTIALS_FILE=str(Path(folder) / "credentials"),
            AWS_EC2_METADATA_DISABLED="true",
            AWS_ENDPOINT_URL=endpoint,
            AWS_REGION="us-east-1",
            AWS_DEFAULT_REGION="us-east-1",
            HOME=folder,
        )
        yield environment


def time_command(command: list[str], environment: dict[str, str]) -> float:
    """Run command once with its output discarded and return the wall-clock seconds."""
    started = time.perf_counter()
    subprocess.run(command, env=environment, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def interleaved_medians(
    runners: dict[str, Callable[[], float]], rounds: int
) -> dict[str, float]:
    """Run each runner once per round, in turn, and return each one's median seconds.

    Interleaving spreads the shared machine's background load over all runners alike.
    """
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, runner in runners.items():
            samples[name].append(runner())
    return {name: statistics.median(values) for name, values in samples.items()}


def machine_line() -> str:
    return (
        f"{datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} CPUs, {platform.machine()}, "
        f"Python {platform.python_version()}"
    )
