"""An HTTP proxy on 127.0.0.1 that sits in front of the moto server and injects faults.

Tests point keyrot's --endpoint-url (or AWS_ENDPOINT_URL) at the proxy. Every request is recorded
with its API action, form parameters and signing access key ID. Rules, matched in the order they
were added, can respond with an AWS error, delay a request, hold it until the test releases it, or
rewrite the upstream response body. Requests that no rule matches pass through unchanged.

    with FaultProxy(moto_url) as proxy:      # or the `proxy` fixture in conftest.py
        proxy.fail("CreateAccessKey", 409, "LimitExceeded", "Cannot exceed quota", times=2)
        proxy.add_rule("ListAccessKeys", delay=3.0, times=None)
        held = proxy.add_rule("UpdateAccessKey", hold=threading.Event())
        ...                                  # start the client
        held.arrived.wait()                  # the request is at the proxy, not yet at moto
        held.hold.set()                      # let it go on to moto
        held.answered.wait()                 # moto has handled it
        proxy.actions()                      # API actions seen so far, in order
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

CREDENTIAL_PATTERN = re.compile(r"Credential=([A-Za-z0-9_]+)/")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the proxy received it."""

    action: str
    params: dict[str, str]
    access_key_id: str | None


@dataclass
class Rule:
    """What to do with requests for one API action; times=None matches every such request."""

    action: str
    times: int | None = 1
    error: tuple[int, str, str] | None = None
    delay: float = 0.0
    hold: threading.Event | None = None
    rewrite: Callable[[bytes], bytes] | None = None
    match: Callable[[RecordedRequest], bool] | None = None
    arrived: threading.Event = field(default_factory=threading.Event)
    # Set once a matched request has been answered, by the rule or by the upstream server (or
    # the upstream call failed); a test waits on it after releasing a held request.
    answered: threading.Event = field(default_factory=threading.Event)
    hits: int = 0

    def applies_to(self, request: RecordedRequest) -> bool:
        if request.action != self.action:
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        return self.match is None or self.match(request)


class FaultProxy:
    """A proxy for one upstream URL; use as a context manager or call start() and stop()."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.requests: list[RecordedRequest] = []
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        for rule in self._rules:
            if rule.hold is not None:
                rule.hold.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def add_rule(self, action: str, **settings: object) -> Rule:
        """Add a rule for action; settings are Rule fields (times, error, delay, hold, ...)."""
        rule = Rule(action=action, **settings)  # type: ignore[arg-type]
        with self._lock:
            self._rules.append(rule)
        return rule

    def fail(
        self, action: str, status: int, code: str, message: str, times: int | None = 1
    ) -> Rule:
        """Respond to the next `times` requests for action with an AWS error response."""
        return self.add_rule(action, error=(status, code, message), times=times)

    def actions(self) -> list[str]:
        return [request.action for request in self.requests]

    def _take_rule(self, request: RecordedRequest) -> Rule | None:
        with self._lock:
            self.requests.append(request)
            for rule in self._rules:
                if rule.applies_to(request):
                    rule.hits += 1
                    return rule
        return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_GET(self) -> None:
                self._forward(b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._forward(self.rfile.read(length))

            def _forward(self, body: bytes) -> None:
                request = _record(body, self.headers.get("Authorization", ""))
                rule = proxy._take_rule(request)
                try:
                    self._answer(rule, body)
                finally:
                    if rule is not None:
                        rule.answered.set()

            def _answer(self, rule: Rule | None, body: bytes) -> None:
                if rule is not None:
                    rule.arrived.set()
                    if rule.hold is not None:
                        rule.hold.wait()
                    if rule.delay:
                        time.sleep(rule.delay)
                    if rule.error is not None:
                        self._reply(*_error_reply(*rule.error))
                        return

                try:
                    status, headers, content = proxy._upstream(
                        self.command, self.path, body, dict(self.headers)
                    )
                    if rule is not None and rule.rewrite is not None:
                        content = rule.rewrite(content)
                    self._reply(status, headers, content)
                except OSError:
                    # The client gave up (a timeout test or a killed process) or moto is gone
                    # at the end of a test.
                    self.close_connection = True

            def _reply(self, status: int, headers: dict[str, str], content: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(content)

        return Handler

    def _upstream(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()


@contextmanager
def running_proxy(upstream: str) -> Iterator[FaultProxy]:
    with FaultProxy(upstream) as proxy:
        yield proxy


def _record(body: bytes, authorization: str) -> RecordedRequest:
    form = parse_qs(body.decode("utf-8", "replace"))
    params = {name: values[0] for name, values in form.items()}
    found = CREDENTIAL_PATTERN.search(authorization)
    return RecordedRequest(
        action=params.get("Action", ""),
        params=params,
        access_key_id=found.group(1) if found else None,
    )


def _error_reply(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    kind = "Receiver" if status >= 500 else "Sender"
    content = (
        '<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
        f"<Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>injected-fault</RequestId></ErrorResponse>"
    )
    return status, {"Content-Type": "text/xml"}, content.encode()
