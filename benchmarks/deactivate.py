"""Measure keyrot's start-up and `keyrot deactivate` against baselines run in the same session.

1. `keyrot --help` against `python -c 'import click'`: keyrot's help must not load boto3 or rich.
2. `keyrot deactivate --user Bob KEY` (with its before and after tables) against
   `aws iam update-access-key` from the AWS CLI, both on one local moto server.

Usage: python benchmarks/deactivate.py [--rounds N]
Prints a Markdown section for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import boto3
from common import (
    BIN,
    FAKE_ACCESS_KEY_ID,
    FAKE_SECRET,
    interleaved_medians,
    isolated_environment,
    local_endpoint,
    machine_line,
    time_command,
)

# The minimum work of any boto3-based tool: start Python, import boto3, create an IAM client and
# send one UpdateAccessKey.
BOTO3_FLOOR = (
    "import boto3; boto3.client('iam').update_access_key("
    "UserName='Bob', AccessKeyId='{key_id}', Status='Active')"
)


def seed_bob(endpoint: str) -> str:
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id=FAKE_ACCESS_KEY_ID, aws_secret_access_key=FAKE_SECRET)
    iam.create_user(UserName="Bob")
    key_id = iam.create_access_key(UserName="Bob")["AccessKey"]["AccessKeyId"]
    iam.create_access_key(UserName="Bob")
    return str(key_id)


def help_ratio(environment: dict[str, str], rounds: int) -> dict[str, float]:
    runners = {
        "import click": lambda: time_command([sys.executable, "-c", "import click"], environment),
        "keyrot --help": lambda: time_command([str(BIN / "keyrot"), "--help"], environment),
    }
    return interleaved_medians(runners, rounds)


def deactivate_ratio(environment: dict[str, str], key_id: str, rounds: int) -> dict[str, float]:
    keyrot = str(BIN / "keyrot")
    aws = str(BIN / "aws")

    def keyrot_deactivate() -> float:
        seconds = time_command([keyrot, "deactivate", "--user", "Bob", key_id], environment)
        time_command([keyrot, "activate", "--user", "Bob", key_id, "--quiet"], environment)
        return seconds

    def aws_deactivate() -> float:
        seconds = time_command([aws, "iam", "update-access-key", "--user-name", "Bob",
                                "--access-key-id", key_id, "--status", "Inactive"], environment)
        time_command([aws, "iam", "update-access-key", "--user-name", "Bob",
                      "--access-key-id", key_id, "--status", "Active"], environment)
        return seconds

    def boto3_floor() -> float:
        return time_command([sys.executable, "-c", BOTO3_FLOOR.format(key_id=key_id)], environment)

    runners = {
        "aws iam update-access-key": aws_deactivate,
        "keyrot deactivate": keyrot_deactivate,
        "boto3 floor": boto3_floor,
    }
    return interleaved_medians(runners, rounds)


def import_profile(environment: dict[str, str], key_id: str) -> list[str]:
    """Return the slowest top-level imports of one `keyrot deactivate` run, from -X importtime."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "keyrot", "deactivate", "--dry-run",
         "--user", "Bob", key_id],
        env=environment, capture_output=True, text=True, check=True,
    )
    rows = []
    for line in result.stderr.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if len(fields) != 3 or not fields[1].strip().isdigit():
            continue
        # importtime indents a module's name by two spaces for each level of nesting.
        name = fields[2].rstrip()
        if name.startswith(" ") and not name.startswith("   "):
            rows.append((int(fields[1]), name.strip()))
    rows.sort(reverse=True)
    return [f"{name} {microseconds / 1000:.0f} ms" for microseconds, name in rows[:5]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    arguments = parser.parse_args()

    with local_endpoint() as endpoint, isolated_environment(endpoint) as environment:
        key_id = seed_bob(endpoint)
        help_times = help_ratio(environment, arguments.rounds)
        deactivate_times = deactivate_ratio(environment, key_id, arguments.rounds)
        imports = import_profile(environment, key_id)

    help_share = help_times["keyrot --help"] / help_times["import click"]
    deactivate_share = (deactivate_times["keyrot deactivate"]
                        / deactivate_times["aws iam update-access-key"])
    print("## Start-up and deactivate\n")
    print(f"Command: `python benchmarks/deactivate.py --rounds {arguments.rounds}`; "
          f"{machine_line()}; medians of {arguments.rounds} interleaved runs.\n")
    print("| measurement | baseline | keyrot | ratio | goal |")
    print("|---|---|---|---|---|")
    print(f"| `keyrot --help` vs `python -c 'import click'` | "
          f"{help_times['import click'] * 1000:.0f} ms | "
          f"{help_times['keyrot --help'] * 1000:.0f} ms | {help_share:.2f} | no boto3 or rich |")
    print(f"| `keyrot deactivate --user Bob KEY` vs `aws iam update-access-key` | "
          f"{deactivate_times['aws iam update-access-key'] * 1000:.0f} ms | "
          f"{deactivate_times['keyrot deactivate'] * 1000:.0f} ms | {deactivate_share:.2f} | "
          "below 0.65 |")
    floor_share = deactivate_times["keyrot deactivate"] / deactivate_times["boto3 floor"]
    print(f"| `keyrot deactivate --user Bob KEY` vs a one-call boto3 script | "
          f"{deactivate_times['boto3 floor'] * 1000:.0f} ms | "
          f"{deactivate_times['keyrot deactivate'] * 1000:.0f} ms | {floor_share:.2f} | "
          "(for scale) |")
    print("\nSlowest top-level imports in one `keyrot deactivate` run: " + ", ".join(imports) + ".")
    return 0


if __name__ == "__main__":
    sys.exit(main())
