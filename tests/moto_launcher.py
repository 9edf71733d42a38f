"""Start a moto server on 127.0.0.1 that, with auth checking on, also rejects inactive keys.

moto 5 accepts requests signed with an Inactive access key even when it checks authentication,
so a test that needs "the old key no longer works" could not fail without this change. The
launcher prints the server's URL on its first line of stdout, then serves until it is killed.

Usage: python tests/moto_launcher.py [--port PORT]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Any

from moto.iam import access_control
from moto.server import ThreadedMotoServer

_original_init = access_control.IAMUserAccessKey.__init__


def _reject_inactive_keys(
    self: access_control.IAMUserAccessKey,
    account_id: str,
    partition: str,
    access_key_id: str,
    headers: dict[str, str],
) -> None:
    _original_init(self, account_id, partition, access_key_id, headers)
    backend: Any = self.backend
    for user in backend.list_users("/", None, None):
        for key in user.access_keys:
            if key.access_key_id == access_key_id and key.status != "Active":
                raise access_control.CreateAccessKeyFailure(reason="InvalidId")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    arguments = parser.parse_args()

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    access_control.IAMUserAccessKey.__init__ = _reject_inactive_keys  # type: ignore[method-assign]

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=arguments.port, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    print(f"http://{host}:{port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
