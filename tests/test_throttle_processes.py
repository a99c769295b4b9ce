"""The Redis throttle across real processes: one shared bucket, leases that outlive no one."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from connectors.base import Limits
from workers.throttle.buckets import Ask, Tuning
from workers.throttle.redis import RedisThrottle

REDIS_URL = "redis://127.0.0.1:6379/14"
NOW = 1_000_000
SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def _grab(flow: str, tries: int, results: Any) -> None:
    throttle = RedisThrottle.from_url(REDIS_URL)
    ask = Ask("asana:shared", Limits(rate=10, burst=40, concurrency=1000), flow=flow)
    granted = 0
    for _ in range(tries):
        decision = throttle.acquire(ask, now_ms=NOW)
        if decision.granted:
            granted += 1
        else:
            # a waiting push keeps its ticket and asks again at its turn
            decision = throttle.acquire(ask, decision.ticket, now_ms=NOW)
            granted += int(decision.granted)
    results.put(granted)


def _hold_slot(ready: Any) -> None:
    throttle = RedisThrottle.from_url(REDIS_URL, Tuning(lease_ms=5_000))
    ask = Ask("salesforce:one", Limits(rate=100, burst=100, concurrency=1))
    assert throttle.acquire(ask, now_ms=NOW).granted
    ready.set()
    signal.pause()  # holds the slot until killed, never releasing it


def test_four_processes_share_one_bucket(client: redis.Redis) -> None:
    # given four worker processes, one bucket of burst 40, and a clock that does not move
    results = SPAWN.Queue()
    procs = [SPAWN.Process(target=_grab, args=(f"org-{n % 2}", 50, results)) for n in range(4)]
    # when each asks for 50 tokens at the same instant
    for p in procs:
        p.start()
    granted = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    # expect exactly the burst granted in all, however the processes interleaved
    assert sum(granted) == 40
    assert all(p.exitcode == 0 for p in procs)


def test_a_killed_workers_slot_expires_with_its_lease(client: redis.Redis) -> None:
    # given a worker process holding the only slot of a bucket
    ready = SPAWN.Event()
    holder = SPAWN.Process(target=_hold_slot, args=(ready,))
    holder.start()
    assert ready.wait(timeout=60)
    # when that worker is killed without releasing it
    assert holder.pid is not None
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(timeout=30)
    throttle = RedisThrottle(client, Tuning(lease_ms=5_000))
    ask = Ask("salesforce:one", Limits(rate=100, burst=100, concurrency=1))
    # expect others to wait while the lease runs, then get the slot once it has expired
    before = throttle.acquire(ask, now_ms=NOW + 4_000)
    assert not before.granted and before.reason == "slots"
    after = throttle.acquire(ask, before.ticket, now_ms=NOW + 5_001)
    assert after.granted
