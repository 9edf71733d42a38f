"""Benchmark fleet mode against a straightforward sequential boto3 script, on a local moto server.

Seeds one account with USERS users of two access keys each, and makes a quarter of the users'
keys (both keys of the first quarter of users) 120 days old. Then it measures, in the same run:

1. `keyrot audit --output json` (and with `--key-ids all`) against a sequential script that
   builds the same information with ListUsers, ListAccessKeys and GetAccessKeyLastUsed;
2. `keyrot deactivate --all-users --older-than 90 --unused-for 30 --yes --output json`
   (deactivating the old keys) against the same sequential script followed by UpdateAccessKey
   for each selected key, and how keyrot's time grows from 100 to USERS users.

Each command runs as a subprocess with its own Python start-up, against a moto server in this
process on 127.0.0.1 that counts the API calls it receives. Accounts are seeded directly in
moto's backend, and the credential report is generated once before each measurement, as for an
account audited in the last four hours.

Usage: python benchmarks/fleet.py [--users 1000] [--rounds 2] [--write-docs]

A run with --rounds 3 took about 5 minutes on a 2-CPU machine, most of it in the sequential
script. The default of 2 rounds should take about two thirds of that (an estimate).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from common import isolated_environment

ROOT = Path(__file__).resolve().parent.parent
KEYROT = str(Path(sys.executable).parent / "keyrot")
ACCOUNT = "123456789012"
OLD_AGE = timedelta(days=120)
POLICY_DAYS = (90, 30)
GROWTH_SIZES = (100, 300, 1000)


class CountingApp:
    """WSGI middleware that counts requests by API action before moto handles them."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        action = parse_qs(body.decode("utf-8", "replace")).get("Action", ["other"])[0]
        with self._lock:
            self.counts[action] += 1
        return self.app(environ, start_response)

    def take(self) -> Counter[str]:
        with self._lock:
            taken, self.counts = self.counts, Counter()
        return taken


@contextmanager
def moto_server() -> Iterator[tuple[str, CountingApp]]:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = CountingApp(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", app
    finally:
        server.shutdown()
        thread.join()


def seed(endpoint: str, users: int) -> int:
    """Reset moto and create users with two keys each; return how many keys were made old."""
    from moto.iam.models import iam_backends

    reset = urllib.request.Request(f"{endpoint}/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(reset, timeout=30) as response:
        response.read()
    backend = iam_backends[ACCOUNT]["aws"]
    old_before = datetime.now(UTC) - OLD_AGE
    old_keys = 0
    for index in range(users):
        user_name = f"user-{index:05d}"
        backend.create_user("us-east-1", user_name)
        for _ in range(2):
            key = backend.create_access_key(user_name)
            if index < users // 4:
                key.create_date = old_before.replace(tzinfo=None)
                old_keys += 1
    backend.generate_report()
    return old_keys


def timed(command: list[str], env: dict[str, str]) -> tuple[float, Any]:
    started = time.perf_counter()
    finished = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if finished.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {finished.returncode}: {finished.stderr}")
    return elapsed, json.loads(finished.stdout)


# The sequential baseline, run as `python benchmarks/fleet.py --sequential audit|deactivate`.

def sequential(mode: str) -> None:
    import boto3

    iam = boto3.client("iam", region_name="us-east-1")
    now = datetime.now(UTC)
    older_than, unused_for = POLICY_DAYS
    records = []
    for page in iam.get_paginator("list_users").paginate():
        for user in page["Users"]:
            listed = iam.list_access_keys(UserName=user["UserName"])["AccessKeyMetadata"]
            for key in listed:
                used = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])
                last_used = used["AccessKeyLastUsed"].get("LastUsedDate")
                age = (now - key["CreateDate"]) // timedelta(days=1)
                idle = (now - (last_used or key["CreateDate"])) // timedelta(days=1)
                breaks = key["Status"] == "Active" and (age >= older_than or idle >= unused_for)
                records.append({
                    "UserName": key["UserName"], "AccessKeyId": key["AccessKeyId"],
                    "Status": key["Status"], "CreateDate": key["CreateDate"].isoformat(),
                    "LastUsedDate": last_used.isoformat() if last_used else None,
                    "LastUsedService": used["AccessKeyLastUsed"].get("ServiceName"),
                    "LastUsedRegion": used["AccessKeyLastUsed"].get("Region"),
                    "Breaks": breaks,
                })
    if mode == "deactivate":
        for record in records:
            if record["Breaks"]:
                iam.update_access_key(UserName=record["UserName"],
                                      AccessKeyId=record["AccessKeyId"], Status="Inactive")
    json.dump(records, sys.stdout)


def sequential_command(mode: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--sequential", mode]


def keyrot_audit(*extra: str) -> list[str]:
    older_than, unused_for = POLICY_DAYS
    return [KEYROT, "audit", "--output", "json", "--older-than", str(older_than),
            "--unused-for", str(unused_for), *extra]


def keyrot_deactivate() -> list[str]:
    older_than, unused_for = POLICY_DAYS
    return [KEYROT, "deactivate", "--all-users", "--older-than", str(older_than),
            "--unused-for", str(unused_for), "--yes", "--output", "json"]


def measure(name: str, command: list[str], users: int, rounds: int, env: dict[str, str],
            counter: CountingApp, check: Any) -> dict[str, Any]:
    samples = []
    for _ in range(rounds):
        old_keys = seed(env["AWS_ENDPOINT_URL"], users)
        counter.take()
        elapsed, output = timed(command, env)
        calls = counter.take()
        check(output, old_keys)
        samples.append(elapsed)
    return {"name": name, "users": users, "seconds": statistics.median(samples),
            "calls": sum(calls.values()), "by_action": dict(calls)}


def check_keyrot_audit(document: dict[str, Any], old_keys: int) -> None:
    assert document["Summary"]["AccessKeys"] == 2 * document["Summary"]["Users"]
    assert document["Summary"]["ByState"]["breaks-policy"] == old_keys, document["Summary"]


def check_sequential_audit(records: list[dict[str, Any]], old_keys: int) -> None:
    assert sum(record["Breaks"] for record in records) == old_keys


def check_keyrot_deactivate(document: dict[str, Any], old_keys: int) -> None:
    assert document["Summary"] == {"done": old_keys}, document["Summary"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--write-docs", action="store_true",
                        help="Write the results into the Fleet section of docs/benchmarks.md.")
    parser.add_argument("--sequential", choices=("audit", "deactivate"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.sequential:
        sequential(arguments.sequential)
        return 0

    results = []
    with moto_server() as (endpoint, counter), isolated_environment(endpoint) as env:
        users, rounds = arguments.users, arguments.rounds
        results.append(measure("keyrot audit", keyrot_audit(), users, rounds, env, counter,
                               check_keyrot_audit))
        results.append(measure("keyrot audit --key-ids all", keyrot_audit("--key-ids", "all"),
                               users, rounds, env, counter, check_keyrot_audit))
        results.append(measure("sequential audit", sequential_command("audit"), users, rounds,
                               env, counter, check_sequential_audit))
        results.append(measure("keyrot deactivate --all-users", keyrot_deactivate(), users,
                               rounds, env, counter, check_keyrot_deactivate))
        results.append(measure("sequential deactivate", sequential_command("deactivate"), users,
                               rounds, env, counter, check_sequential_audit))
        growth = [
            measure("keyrot deactivate --all-users", keyrot_deactivate(), size, rounds, env,
                    counter, check_keyrot_deactivate)
            for size in GROWTH_SIZES if size < users
        ] + [results[3]]

    report = render(results, growth, arguments)
    print(report)
    if arguments.write_docs:
        write_docs(report)
    return 0


def render(results: list[dict[str, Any]], growth: list[dict[str, Any]],
           arguments: argparse.Namespace) -> str:
    by_name = {result["name"]: result for result in results}
    audit_ratio = by_name["sequential audit"]["seconds"] / by_name["keyrot audit"]["seconds"]
    all_ratio = (by_name["sequential audit"]["seconds"]
                 / by_name["keyrot audit --key-ids all"]["seconds"])
    policy_ratio = (by_name["sequential deactivate"]["seconds"]
                    / by_name["keyrot deactivate --all-users"]["seconds"])
    lines = [
        "## Fleet",
        "",
        f"Command: `python benchmarks/fleet.py --users {arguments.users} "
        f"--rounds {arguments.rounds}`",
        "",
        f"Machine: {os.cpu_count()} CPUs, {platform.machine()}, Python "
        f"{platform.python_version()}; date: {datetime.now(UTC):%Y-%m-%d}. moto server in the "
        "benchmark process on 127.0.0.1; every command is a subprocess including Python "
        "start-up; median of the rounds.",
        "",
        f"One account, {arguments.users} users with 2 access keys each; both keys of a quarter "
        "of the users are 120 days old. Policy: older than 90 days or unused for 30 days.",
        "",
        "| run | seconds | API calls | calls by action |",
        "|---|---:|---:|---|",
    ]
    for result in results:
        actions = ", ".join(f"{name} {count}" for name, count in
                            sorted(result["by_action"].items(), key=lambda item: -item[1]))
        lines.append(f"| {result['name']} | {result['seconds']:.2f} | {result['calls']} | "
                     f"{actions} |")
    lines += [
        "",
        f"- Audit: keyrot is {audit_ratio:.1f}x faster than the sequential script "
        f"({all_ratio:.1f}x with `--key-ids all`, which returns every key ID as the script "
        "does).",
        f"- Policy run: keyrot is {policy_ratio:.1f}x faster than the sequential script.",
        "",
        "The moto server answers from one Python process, so on this machine both sides are "
        "bound by the server's throughput: keyrot is faster because it sends "
        f"{by_name['keyrot audit']['calls']:,} requests instead of "
        f"{by_name['sequential audit']['calls']:,} for the audit (the credential report in "
        "place of a ListAccessKeys "
        "and GetAccessKeyLastUsed per user and key) and sends them in parallel. Against IAM, "
        "where a request takes tens of milliseconds, the parallel requests should count for "
        "more; that is an estimate, not measured here.",
        "",
        "Policy run as the account grows (both keys of a quarter of the users deactivated):",
        "",
        "| users | keys deactivated | seconds | API calls |",
        "|---:|---:|---:|---:|",
    ]
    for result in growth:
        lines.append(f"| {result['users']} | {result['users'] // 4 * 2} | "
                     f"{result['seconds']:.2f} | {result['calls']} |")
    return "\n".join(lines) + "\n"


def write_docs(section: str) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    header = ("# keyrot benchmarks\n\nEach section gives the command that produced it, the "
              "machine and the date.\n")
    text = path.read_text() if path.exists() else header
    start = text.find("## Fleet\n")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1:] if end != -1 else "")
    path.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
