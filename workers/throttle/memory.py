"""The in-memory throttle for the embedded default: `buckets.lua`'s decisions, one process."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

from workers.throttle.buckets import Ask, BucketStatus, Decision, Tuning, new_lease


@dataclass
class _Bucket:
    rate: float
    burst: float
    concurrency: int
    tokens: float
    stamp: float
    factor: float = 1.0
    fstamp: float = 0.0
    cooldown: float = 0.0
    flows: dict[str, float] = field(default_factory=dict)
    waiting: dict[str, float] = field(default_factory=dict)
    slots: dict[str, float] = field(default_factory=dict)
    live_until: dict[str, float] = field(default_factory=dict)
    flow_tokens: dict[str, tuple[float, float]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    wait_ms: int = 0


class MemoryThrottle:
    """Same semantics as RedisThrottle, guarded by one lock; for the stub broker."""

    def __init__(self, tuning: Tuning | None = None) -> None:
        self.tuning = tuning or Tuning()
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}

    @staticmethod
    def _now(now_ms: int | None) -> float:
        return float(now_ms) if now_ms is not None else time.time() * 1000

    def _bucket(self, ask: Ask, now: float) -> _Bucket:
        b = self._buckets.get(ask.bucket)
        if b is None:
            b = self._buckets[ask.bucket] = _Bucket(
                ask.limits.rate, ask.limits.burst, ask.limits.concurrency, ask.limits.burst, now
            )
            b.fstamp = now
        b.rate, b.burst, b.concurrency = ask.limits.rate, ask.limits.burst, ask.limits.concurrency
        self._advance(b, now)
        return b

    def _advance(self, b: _Bucket, now: float) -> None:
        if b.factor < 1 and now > b.fstamp:
            b.factor = min(1.0, b.factor + self.tuning.recovery_per_s / 1000 * (now - b.fstamp))
            b.fstamp = now
        if now > b.stamp:
            b.tokens = min(b.burst, b.tokens + (now - b.stamp) * b.rate * b.factor / 1000)
            b.stamp = now

    def acquire(self, ask: Ask, ticket: int = 0, now_ms: int | None = None) -> Decision:
        now = self._now(now_ms)
        with self._lock:
            b = self._bucket(ask, now)
            return self._acquire(b, ask, float(ticket), now)

    def _acquire(self, b: _Bucket, ask: Ask, ticket: float, now: float) -> Decision:
        t = self.tuning
        r = b.rate * b.factor / 1000
        cost = ask.cost
        flow_rate = ask.flow_limits.rate / 1000 if ask.flow_limits else 0.0
        step = cost / r if flow_rate <= 0 else max(cost / r, cost / flow_rate)

        def reply(granted: bool, wait: float, tk: float, why: str, lease: str = "") -> Decision:
            b.counts[why] = b.counts.get(why, 0) + 1
            b.wait_ms += math.ceil(wait) if wait > 0 else 0
            return Decision(granted, math.ceil(wait), int(tk), why, lease)

        flow = ask.flow + "|backfill" if ask.backfill else ask.flow
        if ticket == 0:
            wait_at = b.waiting.get(flow, 0.0)
            live_ms = b.live_until.get(ask.org, 0.0) - now
            if ask.backfill and live_ms > 0:
                at = max(wait_at, now + live_ms)
                b.waiting[flow] = at + step
                return reply(False, at - now, 0, "priority")
            b.flows = {f: v for f, v in b.flows.items() if v > now - t.idle_ms}
            tat = b.flows.get(flow)
            n = len(b.flows) + (1 if tat is None else 0)
            spacing = cost * n / r
            tau = (b.burst - 1) / r
            if ask.flow_limits is not None and flow_rate > 0:
                spacing = max(spacing, cost / flow_rate)
                tau = min(tau, (ask.flow_limits.burst - 1) / flow_rate)
            tat = max(tat if tat is not None else now, now, b.cooldown)
            turn = max(now, b.cooldown, tat - tau)
            if turn - now > t.horizon_ms:
                at = max(wait_at, turn - t.horizon_ms)
                b.waiting[flow] = at + step
                return reply(False, at - now, 0, "queued")
            b.flows[flow] = tat + spacing
            if not ask.backfill:
                b.live_until[ask.org] = tat + spacing + t.idle_ms
                b.flows.pop(flow + "|backfill", None)
            ticket = max(turn, 1)
            if turn > now:
                return reply(False, turn - now, ticket, "turn")
        if ticket > now:
            return reply(False, ticket - now, ticket, "turn")
        if b.cooldown > now:
            return reply(False, b.cooldown - now, ticket, "cooldown")
        if b.tokens < cost:
            return reply(False, (cost - b.tokens) / r, ticket, "tokens")
        ftokens = 0.0
        if ask.flow_limits is not None and flow_rate > 0:
            fb = float(ask.flow_limits.burst)
            ftokens, fat = b.flow_tokens.get(flow, (fb, now))
            if now > fat:
                ftokens = min(fb, ftokens + (now - fat) * flow_rate)
            b.flow_tokens[flow] = (ftokens, now)
            if ftokens < cost:
                return reply(False, (cost - ftokens) / flow_rate, ticket, "flow")
        b.slots = {k: v for k, v in b.slots.items() if v > now}
        if len(b.slots) + ask.slots > b.concurrency:
            poll = max(5.0, 1 / r)
            return reply(False, min(min(b.slots.values()) - now, poll), ticket, "slots")
        b.tokens -= cost
        if ask.flow_limits is not None and flow_rate > 0:
            b.flow_tokens[flow] = (ftokens - cost, now)
        lease = new_lease()
        for member in _members(lease, ask.slots):
            b.slots[member] = now + t.lease_ms
        return reply(True, 0, ticket, "granted", lease)

    def release(self, ask: Ask, lease: str) -> None:
        with self._lock:
            b = self._buckets.get(ask.bucket)
            if b is not None:
                for member in _members(lease, ask.slots):
                    b.slots.pop(member, None)

    def refund(self, ask: Ask, lease: str, cost: float) -> None:
        now = self._now(None)
        with self._lock:
            b = self._buckets.get(ask.bucket)
            if b is not None:
                self._advance(b, now)
                for member in _members(lease, ask.slots):
                    b.slots.pop(member, None)
                b.tokens = min(b.burst, b.tokens + cost)

    def penalize(self, bucket: str, retry_after_s: float, now_ms: int | None = None) -> int:
        now = self._now(now_ms)
        with self._lock:
            b = self._buckets.get(bucket)
            if b is None:
                return 0
            self._advance(b, now)
            if b.cooldown <= now:
                b.factor = max(self.tuning.min_factor, b.factor * 0.5)
            b.cooldown = max(b.cooldown, now + max(0.0, retry_after_s) * 1000)
            b.fstamp = b.cooldown
            b.tokens = 0.0
            b.counts["429"] = b.counts.get("429", 0) + 1
            return math.ceil(b.cooldown - now)

    def sync(
        self, bucket: str, remaining: float, hold_s: float = 60.0, now_ms: int | None = None
    ) -> int:
        now = self._now(now_ms)
        with self._lock:
            b = self._buckets.get(bucket)
            if b is None:
                return 0
            self._advance(b, now)
            b.slots = {k: v for k, v in b.slots.items() if v > now}
            left = remaining - len(b.slots)
            b.tokens = max(0.0, min(b.tokens, left))
            if left <= 0:
                b.cooldown = max(b.cooldown, now + hold_s * 1000)
            return max(0, math.ceil(b.cooldown - now))

    def status(self, now_ms: int | None = None) -> list[BucketStatus]:
        now = self._now(now_ms)
        idle = self.tuning.idle_ms
        with self._lock:
            out = []
            for name, b in sorted(self._buckets.items()):
                self._advance(b, now)
                out.append(
                    BucketStatus(
                        bucket=name,
                        rate=b.rate * b.factor,
                        burst=b.burst,
                        tokens=b.tokens,
                        factor=b.factor,
                        cooldown_ms=max(0, int(b.cooldown - now)),
                        slots_held=sum(1 for v in b.slots.values() if v > now),
                        concurrency=b.concurrency,
                        active_flows=sum(1 for v in b.flows.values() if v > now - idle),
                        counts=dict(b.counts),
                        wait_ms_total=b.wait_ms,
                    )
                )
            return out


def _members(lease: str, slots: int) -> list[str]:
    """The slots a grant of `slots` holds, named as buckets.lua names them."""
    return [lease, *(f"{lease}#{i}" for i in range(2, slots + 1))]
