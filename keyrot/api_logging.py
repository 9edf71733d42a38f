"""Logging of each AWS API call, retry and wait, for --verbose.

The handlers log the operation, HTTP status, request ID, attempt and timing. They never log request
or response bodies, so a secret access key from CreateAccessKey cannot reach the log.
"""

from __future__ import annotations

import logging
import time
from typing import Any

logger = logging.getLogger(__name__)


class ApiCallLogger:
    """botocore event handlers that log one line for each attempt of each API call."""

    def __init__(self) -> None:
        self._started: dict[str, float] = {}
        self._failed_at: dict[str, float] = {}

    def register(self, events: Any) -> None:
        """Register on a botocore session or client; a second registration is ignored."""
        events.register("before-send", self.before_send, unique_id="keyrot-log-send")
        events.register_first("needs-retry", self.after_attempt, unique_id="keyrot-log-attempt")

    def before_send(self, request: Any, event_name: str, **_: Any) -> None:
        operation = _operation(event_name)
        attempt_header = request.headers.get("amz-sdk-request", b"")
        attempt = _attempt_text(attempt_header)
        invocation = _header_text(request.headers.get("amz-sdk-invocation-id", b""))
        now = time.monotonic()
        self._started[invocation] = now

        failed_at = self._failed_at.pop(invocation, None)
        if failed_at is None:
            logger.info("%s: sending (%s)", operation, attempt)
        else:
            waited = now - failed_at
            logger.info("%s: retrying (%s) after waiting %.2f s", operation, attempt, waited)

    def after_attempt(
        self,
        event_name: str,
        response: Any = None,
        caught_exception: Exception | None = None,
        request_dict: Any = None,
        **_: Any,
    ) -> None:
        operation = _operation(event_name)
        context = request_dict.get("context", {}) if isinstance(request_dict, dict) else {}
        invocation = str(context.get("retries", {}).get("invocation-id", ""))
        started = self._started.get(invocation, time.monotonic())
        elapsed_ms = (time.monotonic() - started) * 1000

        if caught_exception is not None:
            self._failed_at[invocation] = time.monotonic()
            logger.info(
                "%s: no response after %.0f ms: %s", operation, elapsed_ms, caught_exception
            )
            return
        if response is None:
            return

        http_response, parsed = response
        metadata = parsed.get("ResponseMetadata", {}) if isinstance(parsed, dict) else {}
        request_id = metadata.get("RequestId", "unknown")
        error_code = parsed.get("Error", {}).get("Code") if isinstance(parsed, dict) else None
        outcome = f"HTTP {http_response.status_code}"
        if error_code:
            outcome += f" {error_code}"
            self._failed_at[invocation] = time.monotonic()
        logger.info("%s: %s, request ID %s, %.0f ms", operation, outcome, request_id, elapsed_ms)


def _operation(event_name: str) -> str:
    # Event names look like "before-send.iam.ListAccessKeys".
    parts = event_name.split(".")
    return f"{parts[1].upper()} {parts[2]}" if len(parts) >= 3 else event_name


def _header_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _attempt_text(header: bytes | str) -> str:
    # botocore sends "attempt=2; max=3" in the amz-sdk-request header.
    fields = dict(
        item.strip().split("=", 1) for item in _header_text(header).split(";") if "=" in item
    )
    if "attempt" not in fields:
        return "attempt 1"
    if "max" in fields:
        return f"attempt {fields['attempt']} of {fields['max']}"
    return f"attempt {fields['attempt']}"
