"""Run keyrot against a local IAM endpoint that this script starts: no AWS account needed.

The script starts a moto server on 127.0.0.1 (a free port), creates user Bob with two access keys,
runs `keyrot deactivate` and then `keyrot activate` on one of them, and stops the server. keyrot
runs with made-up credentials and AWS config files in a temporary folder, so nothing in ~/.aws is
read.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

FAKE_ACCESS_KEY_ID = "AKIADEMODEMODEMO0000"
FAKE_SECRET = "demo-secret-not-real"


def demo_environment(folder: Path, endpoint: str) -> dict[str, str]:
    """Return an environment with fake credentials, local files and the local endpoint only."""
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith("AWS_")}
    (folder / "config").write_text("[default]\nregion = us-east-1\n")
    (folder / "credentials").write_text("")
    environment.update(
        AWS_ACCESS_KEY_ID=FAKE_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY=FAKE_SECRET,
        AWS_CONFIG_FILE=str(folder / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(folder / "credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_ENDPOINT_URL=endpoint,
        AWS_REGION="us-east-1",
    )
    return environment


def create_bob(endpoint: str) -> list[str]:
    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=FAKE_ACCESS_KEY_ID,
        aws_secret_access_key=FAKE_SECRET,
    )
    iam.create_user(UserName="Bob")
    return [iam.create_access_key(UserName="Bob")["AccessKey"]["AccessKeyId"] for _ in range(2)]


def run_keyrot(arguments: list[str], environment: dict[str, str]) -> int:
    command = [sys.executable, "-m", "keyrot", *arguments]
    print(f"\n$ keyrot {shlex.join(arguments)}", flush=True)
    return subprocess.run(command, env=environment, check=False).returncode


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    print(f"Local IAM endpoint (moto) listening on {endpoint}")

    try:
        with tempfile.TemporaryDirectory(prefix="keyrot-demo-") as folder:
            environment = demo_environment(Path(folder), endpoint)
            key_ids = create_bob(endpoint)
            print(f"Created user Bob with access keys {', '.join(key_ids)}")

            for arguments in (
                ["list", "--user", "Bob"],
                ["deactivate", "--user", "Bob", key_ids[0]],
                ["activate", "--user", "Bob", key_ids[0]],
            ):
                status = run_keyrot(arguments, environment)
                if status != 0:
                    print(f"keyrot exited with status {status}", file=sys.stderr)
                    return status
    finally:
        server.stop()
    print("\nDemo finished; the local endpoint is stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
