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
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from connectors.base import Connector, Op, Outcome, Receipt
from connectors.errors import ConnectorError
from meetsync import metrics
from meetsync.logging import bind

log = logging.getLogger("workers.provider")

REASON_CHARS = 300
T = TypeVar("T")


class Instrumented:
    """A connector whose `apply` and `find` are measured and logged."""

    def __init__(self, inner: Connector, connection: str) -> None:
        self._inner = inner
        self._connection = connection

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def apply(self, op: Op, prior: Receipt | None) -> Receipt:
        action = "apply" if prior is None else "update"
        return self._call(action, [op], lambda: self._inner.apply(op, prior))

    def find(self, op: Op) -> Receipt | None:
        return self._call("find", [op], lambda: self._inner.find(op))

    @property
    def writes_many(self) -> bool:
        """Whether the connector writes several ops in one call (`apply_many`)."""
        return callable(getattr(self._inner, "apply_many", None))

    def apply_many(self, writes: Sequence[tuple[Op, Receipt | None]]) -> list[Outcome]:
        """Several ops' `apply` in one call: each op's receipt, error, or None (not sent);
        the errors among them counted and logged as a failed `apply` would be."""
        ops = [op for op, _ in writes]
        outcomes: list[Outcome] = self._call(
            "apply_many",
            ops,
            lambda: self._inner.apply_many(list(writes)),  # type: ignore[attr-defined]
        )
        for op, outcome in zip(ops, outcomes, strict=True):
            if isinstance(outcome, ConnectorError):
                with bind(provider=self._inner.name, connection=self._connection, op=op.key):
                    self._failed("apply", outcome)
        return outcomes

    def find_many(self, ops: Sequence[Op]) -> dict[str, Receipt | None]:
        """Several ops' `find`: in one call where the connector looks them up together
        (`find_many`), else one at a time."""
        many = getattr(self._inner, "find_many", None)
        if len(ops) == 1 or many is None:
            return {op.key: self.find(op) for op in ops}
        return self._call("find_many", ops, lambda: many(list(ops)))

    def _call(self, action: str, ops: Sequence[Op], run: Callable[[], T]) -> T:
        provider = self._inner.name
        started = time.perf_counter()
        with bind(provider=provider, connection=self._connection, op=",".join(o.key for o in ops)):
            try:
                result = run()
            except ConnectorError as exc:
                self._failed(action, exc)
                raise
            finally:
                elapsed = time.perf_counter() - started
                metrics.PUSH_SECONDS.labels(provider, action).observe(elapsed)
            # a receipt, or find_many's receipts by key, or apply_many's outcomes (how many)
            many = isinstance(result, dict | list)
            answers = list(result.values()) if isinstance(result, dict) else result
            answers = answers if isinstance(answers, list) else [answers]
            landed = [r for r in answers if isinstance(r, Receipt)]
            request_id = (landed[0].extra or {}).get("request_id") if landed else None
            with bind(request_id=request_id):
                log.info(
                    "%s %s",
                    provider,
                    action,
                    extra={
                        "event": "provider_call",
                        "action": action,
                        "found": len(landed) if many else bool(landed),
                        "seconds": round(elapsed, 4),
                    },
                )
            return result

    def _failed(self, action: str, exc: ConnectorError) -> None:
        provider = self._inner.name
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
