"""The throttle in front of a push: which bucket an op draws from, and what the answer said."""

from __future__ import annotations

import logging
from contextlib import suppress
from dataclasses import dataclass, field

from connectors.errors import ConnectorError
from meetsync.db.models import Meeting, OpRecord
from workers.connections import ConnectionMissing, EndpointRefused
from workers.runtime import Runtime
from workers.throttle.buckets import Ask, Decision, Throttle, admit, redelivery_ms
from workers.throttle.feedback import on_rate_limited, on_salesforce_usage
from workers.throttle.limits import ask_for_op, make_throttle

log = logging.getLogger(__name__)


@dataclass
class PushGate:
    """One per worker process: asks the shared throttle before a push, reports after it."""

    runtime: Runtime
    throttle: Throttle
    # the connector of each bucket seen, to read its provider usage (Sforce-Limit-Info)
    connectors: dict[str, object] = field(default_factory=dict)

    @classmethod
    def for_runtime(cls, runtime: Runtime) -> PushGate:
        return cls(runtime, make_throttle(runtime.settings))

    def ask(self, key: str) -> Ask | None:
        """The op's bucket and flow; None when the op is gone (the push stage says so)."""
        with self.runtime.session() as session:
            row = session.get(OpRecord, key)
            if row is None:
                return None
            meeting = session.get(Meeting, row.meeting_id)
            backfill = meeting is not None and meeting.source == "backfill"
            ask = ask_for_op(
                self.runtime.settings,
                connector=row.connector,
                connection=row.connection,
                org=row.org_id,
                target=dict(row.target or {}),
                backfill=backfill,
            )
            if ask.bucket not in self.connectors:
                # a connection that cannot be built fails in the push stage, recorded there
                with suppress(ConnectorError, ConnectionMissing, EndpointRefused):
                    built = self.runtime.connectors.get(session, row.connection, org_id=row.org_id)
                    self.connectors[ask.bucket] = built
            return ask

    def admit(self, ask: Ask, ticket: int) -> Decision:
        return admit(self.throttle, ask, ticket)

    def delay_ms(self, decision: Decision) -> int:
        """How long to re-enqueue a push that must wait: a little early for its turn."""
        return redelivery_ms(self.throttle, decision)

    def done(self, ask: Ask, decision: Decision) -> None:
        """Release the slot and pass on what the provider said about its budget."""
        self.throttle.release(ask, decision.lease)
        usage = getattr(self.connectors.get(ask.bucket), "api_usage", None)
        if usage:
            used, limit = usage
            share = self.runtime.settings.throttle.salesforce_reserve_share
            on_salesforce_usage(self.throttle, ask.bucket, used, limit, share)

    def rate_limited(self, ask: Ask, retry_after_s: float) -> int:
        """The provider answered 429: cool the bucket for everyone; the wait in ms."""
        wait_ms = on_rate_limited(self.throttle, ask.bucket, retry_after_s)
        log.info("throttle %s cooling down %d ms", ask.bucket, wait_ms)
        return max(wait_ms, 1)
