"""Every provider call timed, counted by outcome and error class, and logged when it fails.

`ConnectorCache` hands out connectors wrapped in `Instrumented`: `apply` and `find` run
with the provider and connection bound to the log context, observe
`meetsync_push_seconds{provider, action}`, and count what escaped them by class in
`meetsync_provider_errors_total{provider, error}`, with one log line carrying the
provider's code and message (what it said, never what we sent). Everything else
(`describe`, `api_usage`, connector facts) passes through untouched.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from connectors.base import Connector, Op, Receipt
from connectors.errors import ConnectorError
from meetsync import metrics
from meetsync.logging import bind

log = logging.getLogger("workers.provider")

REASON_CHARS = 300


class Instrumented:
    """A connector whose `apply` and `find` are measured and logged."""

    def __init__(self, inner: Connector, connection: str) -> None:
        self._inner = inner
        self._connection = connection

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def apply(self, op: Op, prior: Receipt | None) -> Receipt:
        receipt: Receipt = self._call("apply" if prior is None else "update", op, prior)
        return receipt

    def find(self, op: Op) -> Receipt | None:
        found: Receipt | None = self._call("find", op)
        return found

    def _call(self, action: str, op: Op, *args: Any) -> Any:
        provider = self._inner.name
        method = getattr(self._inner, "find" if action == "find" else "apply")
        started = time.perf_counter()
        with bind(provider=provider, connection=self._connection, op=op.key):
            try:
                result = method(op, *args)
            except ConnectorError as exc:
                metrics.PROVIDER_ERRORS.labels(provider, type(exc).__name__).inc()
                log.warning(
                    "%s %s: %s",
                    provider,
                    action,
                    type(exc).__name__,
                    extra={
                        "event": "provider_error",
                        "error": type(exc).__name__,
                        "provider_code": exc.provider_code,
                        "reason": str(exc)[:REASON_CHARS],
                    },
                )
                raise
            finally:
                elapsed = time.perf_counter() - started
                metrics.PUSH_SECONDS.labels(provider, action).observe(elapsed)
            request_id = (result.extra or {}).get("request_id") if result is not None else None
            with bind(request_id=request_id):
                log.info(
                    "%s %s",
                    provider,
                    action,
                    extra={
                        "event": "provider_call",
                        "action": action,
                        "found": result is not None,
                        "seconds": round(elapsed, 4),
                    },
                )
            return result
