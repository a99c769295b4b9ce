"""What a stage came to, said once: one structured log line and a metric per outcome.

The actors call these after a stage answers, so the stages stay pure:

| outcome | log line (event) | metric |
| --- | --- | --- |
| a push parked `failed` (Permanent) | `op_failed` | `meetsync_dead_letters_total` |
| a connection paused (AuthExpired) | `connection_paused` | `meetsync_dead_letters_total` |
| retries exhausted: a dead letter | `op_dead` | `meetsync_dead_letters_total` |
| a meeting failed | `meeting_failed` | `meetsync_meetings_failed_total` |
| an extraction (cached or not) | `extracted` | cache hits, LLM calls, tokens, cost |

Each line carries the reason as stored in the ledger or on the meeting: the provider's
code and message, or the error's class, never the op's field values.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from meetsync import metrics
from meetsync.db.models import OpRecord
from meetsync.logging import bind
from meetsync.states import PushState
from workers.runtime import Runtime

if TYPE_CHECKING:
    from workers.stages import Extracted

log = logging.getLogger("workers.outcomes")

REASON_CHARS = 300
PARKED = {
    PushState.FAILED: "op_failed",
    PushState.PAUSED: "connection_paused",
    PushState.DEAD: "op_dead",
}


def pushed(runtime: Runtime, key: str, provider: str, state: PushState) -> None:
    """Count a push's outcome; a parked op gets its one log line with the stored reason."""
    metrics.PUSH_OUTCOMES.labels(provider, str(state)).inc()
    event = PARKED.get(state)
    if event is None:
        return
    metrics.DEAD_LETTERS.labels(provider, str(state)).inc()
    with runtime.session() as session:
        row = session.get(OpRecord, key)
        reason = (row.last_error or "") if row is not None else "op gone"
        fields = {"org": row.org_id, "meeting": row.meeting_id} if row is not None else {}
        connection = row.connection if row is not None else None
    with bind(op=key, provider=provider, connection=connection, **fields):
        log.warning(
            "%s: %s",
            event.replace("_", " "),
            reason[:REASON_CHARS],
            extra={"event": event, "state": str(state), "reason": reason[:REASON_CHARS]},
        )


def meeting_failed(meeting_id: str, stage: str, reason: str) -> None:
    metrics.MEETINGS_FAILED.labels(stage).inc()
    with bind(meeting=meeting_id):
        log.warning(
            "meeting failed in %s: %s",
            stage,
            reason[:REASON_CHARS],
            extra={"event": "meeting_failed", "stage": stage, "reason": reason[:REASON_CHARS]},
        )


def extracted(runtime: Runtime, done: Extracted) -> None:
    """Count a cache hit, or the LLM calls, tokens and spend of a fresh extraction."""
    metrics.EXTRACTION_CACHE.labels("miss" if done.fresh else "hit").inc()
    if not done.fresh:
        log.info("extraction answered from the cache", extra={"event": "extracted"})
        return
    prices = runtime.settings.llm.prices
    for call in done.usage:
        model = str(call.get("model", "?"))
        tokens_in, tokens_out = int(call.get("input_tokens", 0)), int(call.get("output_tokens", 0))
        price_in, price_out = prices.get(model, (0.0, 0.0))
        usd = (tokens_in * price_in + tokens_out * price_out) / 1_000_000
        metrics.llm_call(done.org_id, model, str(call.get("task", "?")), tokens_in, tokens_out, usd)
    with bind(org=done.org_id):
        log.info("extracted", extra={"event": "extracted", "llm_calls": len(done.usage)})


def waited(bucket: str, wait_ms: int) -> None:
    """The throttle sent a message back for its turn in `bucket`."""
    metrics.THROTTLE_WAIT.labels(bucket).observe(max(0, wait_ms) / 1000)
