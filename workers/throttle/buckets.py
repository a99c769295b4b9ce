"""Per-provider throttling shared by every worker process: buckets, turns, slots, cooldowns.

A *bucket* is one credential's budget at one provider (`asana:acme-asana`,
`openai:<host>:gpt-4o-mini`): a token bucket (rate, burst), concurrency slots held as
leases that expire if their worker dies, a cooldown set by the provider's 429 or limit
headers, and a rate factor that halves on each cooldown and recovers additively.

Inside a bucket, *flows* (an org, or a Slack channel) take turns: each active flow gets an
equal share of the rate, capped by its own limit, and a push that is not yet due gets a
*ticket* for its turn plus the exact wait until then. Turns are handed out at most
`horizon_ms` ahead, so a change in who is active (another org's live meeting arrives, a
429 lowers the rate) takes effect within the horizon; pushes beyond it come back in line,
spaced so they do not herd. Backfill of an org yields to that org's live meetings.

Waiting costs nothing: `acquire` never sleeps; the caller re-enqueues with the wait.
Backends: Redis (one Lua script, `buckets.lua`; production) and memory (the embedded
default; same decisions, one process).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Protocol

from connectors.base import Limits


@dataclass(frozen=True)
class Ask:
    """What one push needs from the throttle."""

    bucket: str
    limits: Limits
    flow: str = "default"
    org: str = "default"
    backfill: bool = False
    flow_limits: Limits | None = None
    cost: float = 1.0
    # concurrency slots a grant holds: the writes one request of the push sends at once
    # (an Asana batch request's actions each count as a concurrent write)
    width: int = 1

    @property
    def slots(self) -> int:
        """The slots a grant holds: its width, never more than the bucket has."""
        return max(1, min(self.width, self.limits.concurrency))


@dataclass(frozen=True)
class Decision:
    """Granted (holding `lease` until released), or the exact wait and the ticket to keep."""

    granted: bool
    wait_ms: int
    ticket: int
    reason: str
    lease: str = ""


@dataclass(frozen=True)
class Tuning:
    """How buckets behave, shared by both backends (from ThrottleSettings)."""

    lease_ms: int = 120_000
    horizon_ms: int = 2_000
    idle_ms: int = 5_000
    recovery_per_s: float = 0.05
    min_factor: float = 0.05
    early_ms: int = 0


@dataclass
class BucketStatus:
    """One bucket as `meetsync status throttles` shows it."""

    bucket: str
    rate: float
    burst: float
    tokens: float
    factor: float
    cooldown_ms: int
    slots_held: int
    concurrency: int
    active_flows: int
    counts: dict[str, int] = field(default_factory=dict)
    wait_ms_total: int = 0


class Throttle(Protocol):
    """The operations a worker needs; both backends implement them atomically."""

    tuning: Tuning

    def acquire(self, ask: Ask, ticket: int = 0, now_ms: int | None = None) -> Decision:
        """A token and a slot now, or the wait (ms) before asking again with `ticket`."""
        ...

    def release(self, ask: Ask, lease: str) -> None:
        """Give back the slot a granted decision holds."""
        ...

    def refund(self, ask: Ask, lease: str, cost: float) -> None:
        """Give back the slot and `cost` tokens a grant took but never spent."""
        ...

    def penalize(self, bucket: str, retry_after_s: float, now_ms: int | None = None) -> int:
        """The provider said 429: cool the bucket down and lower its rate; returns the wait."""
        ...

    def sync(
        self, bucket: str, remaining: float, hold_s: float = 60.0, now_ms: int | None = None
    ) -> int:
        """The provider reported what is left: hold no more; with none, pause `hold_s`."""
        ...

    def status(self, now_ms: int | None = None) -> list[BucketStatus]:
        """Every known bucket, for operators."""
        ...


def new_lease() -> str:
    return uuid.uuid4().hex


def admit(throttle: Throttle, ask: Ask, ticket: int = 0) -> Decision:
    """`acquire`, but a turn at most `early_ms` away is waited for here, in this thread.

    Off by default (`early_ms` 0): waits come back on a returns queue that workers run
    before new work, which keeps a Slack channel's turns. On a broker whose delayed messages
    come back late, a flow with a tiny burst cannot make up a missed turn: there waits can
    be re-enqueued `early_ms` short (`redelivery_ms`) and the last few ms slept.
    """
    early = throttle.tuning.early_ms
    deadline = time.monotonic() + early / 1000
    decision = throttle.acquire(ask, ticket)
    while not decision.granted and decision.ticket and 0 < decision.wait_ms <= early:
        if time.monotonic() + decision.wait_ms / 1000 > deadline:
            break
        time.sleep(decision.wait_ms / 1000)
        decision = throttle.acquire(ask, decision.ticket)
    return decision


def redelivery_ms(throttle: Throttle, decision: Decision) -> int:
    """The delay to re-enqueue a wait with: a little early when it holds a ticket."""
    if not decision.ticket:
        return decision.wait_ms
    return max(0, decision.wait_ms - throttle.tuning.early_ms)
