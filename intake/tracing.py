"""Every request gets a correlation id; every webhook answer is counted and logged.

A pure ASGI middleware (no per-request task or body copy on the way in): it binds
`correlation_id` (the caller's `X-Request-Id` when it is a sane token, else a new one) to
the log context for the request, so the meeting's messages carry it on through every queue
(`workers.tracing`), and echoes it back in `X-Request-Id`. On the webhook path it reads
the answer's small JSON body to count it by status and error code and to log one line:
accepted with the meeting id, or refused with the reason's code.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meetsync import metrics
from meetsync.logging import bind, new_correlation_id

log = logging.getLogger("intake.webhooks")

WEBHOOK_PATH = "/v1/webhooks/meeting-completed"
REQUEST_ID = b"x-request-id"
_SANE = re.compile(r"[A-Za-z0-9._:-]{8,64}")


class Tracing:
    """Correlation ids for every request; counts and one log line for every webhook."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == REQUEST_ID), b"").decode("latin-1")
        correlation = given if _SANE.fullmatch(given) else new_correlation_id()
        webhook = scope["path"] == WEBHOOK_PATH
        answer: dict[str, Any] = {"status": 0, "body": b""}

        async def traced_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID, correlation.encode()),
                ]
            elif webhook and message["type"] == "http.response.body":
                answer["body"] += message.get("body", b"")
            await send(message)

        with bind(correlation_id=correlation):
            await self.app(scope, receive, traced_send)
            if webhook:
                _record(answer["status"], answer["body"])


def _record(status: int, body: bytes) -> None:
    """Count the webhook's answer; log it with its reason (never the payload's content)."""
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        parsed = {}
    error = parsed.get("error") if isinstance(parsed, dict) else None
    code = str(error.get("code", "error")) if isinstance(error, dict) else ""
    if not code:
        code = str(parsed.get("status", "")) if isinstance(parsed, dict) else ""
    metrics.WEBHOOKS.labels(str(status), code[:40]).inc()
    if 200 <= status < 300:
        meeting = parsed.get("meeting_id") if isinstance(parsed, dict) else None
        with bind(meeting=meeting):
            log.info("webhook %s", code, extra={"event": "webhook", "status": status})
    else:
        log.warning(
            "webhook refused: %s",
            code,
            extra={"event": "webhook_refused", "status": status, "reason": code},
        )
