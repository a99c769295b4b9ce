"""The Redis throttle: every decision is one Lua script call, atomic across hosts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis

from connectors.base import Limits
from workers.throttle.buckets import Ask, BucketStatus, Decision, Tuning, new_lease

SCRIPT = (Path(__file__).with_name("buckets.lua")).read_text()
PREFIX = "throttle:"


def _keys(bucket: str, org: str = "") -> list[str]:
    # one hash tag per bucket keeps a bucket's keys on one Redis Cluster slot
    base = f"{PREFIX}{{{bucket}}}"
    return [base, f"{base}:flows", f"{base}:waiting", f"{base}:slots", f"{base}:live:{org}"]


class RedisThrottle:
    """Buckets in Redis, shared by every worker process and host."""

    def __init__(self, client: redis.Redis, tuning: Tuning | None = None) -> None:
        self.client = client
        self.tuning = tuning or Tuning()
        self._script = client.register_script(SCRIPT)

    @classmethod
    def from_url(cls, url: str, tuning: Tuning | None = None) -> RedisThrottle:
        return cls(redis.Redis.from_url(url), tuning)

    def _run(self, keys: list[str], argv: list[Any]) -> list[Any]:
        result: list[Any] = self._script(keys=keys, args=argv)
        return result

    def _argv(
        self, ask: Ask, op: str, *, ticket: float = 0, lease: str = "", now: int | None
    ) -> list[Any]:
        t = self.tuning
        flow = ask.flow_limits
        return [
            -1 if now is None else now,
            ask.limits.rate,
            ask.limits.burst,
            ask.limits.concurrency,
            t.lease_ms,
            t.horizon_ms,
            t.idle_ms,
            ask.flow,
            flow.rate if flow else 0,
            flow.burst if flow else 1,
            1 if ask.backfill else 0,
            ticket,
            lease,
            ask.cost,
            t.recovery_per_s,
            op,
            ask.slots,
        ]

    def acquire(self, ask: Ask, ticket: int = 0, now_ms: int | None = None) -> Decision:
        lease = new_lease()
        argv = self._argv(ask, "acquire", ticket=ticket, lease=lease, now=now_ms)
        granted, wait, ticket_out, reason = self._run(_keys(ask.bucket, ask.org), argv)
        return Decision(
            bool(granted),
            int(wait),
            int(ticket_out),
            reason.decode() if isinstance(reason, bytes) else str(reason),
            lease if granted else "",
        )

    def release(self, ask: Ask, lease: str) -> None:
        self._run(_keys(ask.bucket), self._argv(ask, "release", lease=lease, now=None))

    def refund(self, ask: Ask, lease: str, cost: float) -> None:
        argv = self._argv(ask, "refund", lease=lease, now=None)
        argv[13] = cost
        self._run(_keys(ask.bucket), argv)

    def _bucket_op(
        self, bucket: str, op: str, value: float, now_ms: int | None, extra: float | None = None
    ) -> int:
        h = self.client.hmget(f"{PREFIX}{{{bucket}}}", ["rate", "burst", "concurrency"])
        rate, burst, conc = (float(v) if v is not None else 1.0 for v in h)
        ask = Ask(bucket, Limits(rate=rate, burst=int(burst), concurrency=int(conc)))
        argv = self._argv(ask, op, ticket=value, now=now_ms)
        argv[9] = self.tuning.min_factor if extra is None else extra
        return int(self._run(_keys(bucket), argv)[1])

    def penalize(self, bucket: str, retry_after_s: float, now_ms: int | None = None) -> int:
        return self._bucket_op(bucket, "penalize", max(0.0, retry_after_s) * 1000, now_ms)

    def sync(
        self, bucket: str, remaining: float, hold_s: float = 60.0, now_ms: int | None = None
    ) -> int:
        return self._bucket_op(bucket, "sync", max(0.0, remaining), now_ms, hold_s * 1000)

    def status(self, now_ms: int | None = None) -> list[BucketStatus]:
        if now_ms is None:
            seconds, micros = self.client.time()
            now_ms = int(seconds) * 1000 + int(micros) // 1000
        found: list[BucketStatus] = []
        for raw in sorted(self.client.scan_iter(match=f"{PREFIX}{{*}}", count=500)):
            key = _text(raw)
            if not key.endswith("}"):
                continue
            bucket = key[len(PREFIX) + 1 : -1]
            h = {_text(k): _text(v) for k, v in self.client.hgetall(key).items()}
            found.append(_status(self.client, bucket, h, now_ms, self.tuning))
        return found


def _status(
    client: redis.Redis, bucket: str, h: dict[str, str], now: int, tuning: Tuning
) -> BucketStatus:
    keys = _keys(bucket)
    rate, burst = float(h.get("rate", 0)), float(h.get("burst", 0))
    factor, fstamp = float(h.get("factor", 1)), float(h.get("fstamp", now))
    if factor < 1 and now > fstamp:
        factor = min(1.0, factor + tuning.recovery_per_s / 1000 * (now - fstamp))
    stamp = float(h.get("stamp", now))
    tokens = min(burst, float(h.get("tokens", 0)) + max(0, now - stamp) * rate * factor / 1000)
    return BucketStatus(
        bucket=bucket,
        rate=rate * factor,
        burst=burst,
        tokens=tokens,
        factor=factor,
        cooldown_ms=max(0, int(float(h.get("cooldown", 0)) - now)),
        slots_held=int(client.zcount(keys[3], now, "+inf")),
        concurrency=int(float(h.get("concurrency", 0))),
        active_flows=int(client.zcount(keys[1], now - tuning.idle_ms, "+inf")),
        counts={k[2:]: int(v) for k, v in h.items() if k.startswith("n_")},
        wait_ms_total=int(h.get("wait_ms", 0)),
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
