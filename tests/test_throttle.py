"""The throttle's decisions on both backends, on a virtual clock: counts and order only."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis

from connectors.base import Limits
from workers.throttle.buckets import Ask, Throttle, Tuning, admit, redelivery_ms
from workers.throttle.feedback import duration_s, parse_sforce_limit_info
from workers.throttle.memory import MemoryThrottle
from workers.throttle.redis import RedisThrottle

REDIS_URL = "redis://127.0.0.1:6379/14"
LIMITS = Limits(rate=10, burst=5, concurrency=100)


@pytest.fixture(params=["memory", "redis"])
def throttle(request: pytest.FixtureRequest) -> Iterator[Throttle]:
    if request.param == "memory":
        yield MemoryThrottle()
        return
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield RedisThrottle(client)
    client.flushdb()
    client.close()


def simulate(
    throttle: Throttle, arrivals: list[tuple[int, Ask]], until_ms: int
) -> list[tuple[int, Ask]]:
    """Run pushes on a virtual clock: each waits as told and comes back with its ticket."""
    events = [(at, i, ask, 0) for i, (at, ask) in enumerate(arrivals)]
    heapq.heapify(events)
    granted: list[tuple[int, Ask]] = []
    while events:
        now, i, ask, ticket = heapq.heappop(events)
        if now > until_ms:
            break
        decision = throttle.acquire(ask, ticket, now_ms=now)
        if decision.granted:
            granted.append((now, ask))
            throttle.release(ask, decision.lease)
        else:
            assert decision.wait_ms > 0
            heapq.heappush(events, (now + decision.wait_ms, i, ask, decision.ticket))
    return granted


def test_a_bucket_grants_its_burst_then_its_rate(throttle: Throttle) -> None:
    # given a bucket of 10/s with a burst of 5 and 200 pushes at once
    ask = Ask("asana:acme", LIMITS)
    # when they run for 10 virtual seconds
    granted = simulate(throttle, [(1_000, ask)] * 200, until_ms=11_000)
    # expect the burst plus ten seconds of rate, never more
    assert 5 + 10 * 10 - 1 <= len(granted) <= 5 + 10 * 10
    assert sum(1 for at, _ in granted if at == 1_000) == 5


def test_a_429_cools_the_bucket_for_everyone_and_halves_the_rate(throttle: Throttle) -> None:
    # given a busy bucket
    ask = Ask("slack:acme", LIMITS)
    simulate(throttle, [(1_000, ask)] * 5, until_ms=1_000)
    # when the provider answers 429 with Retry-After: 3
    wait = throttle.penalize("slack:acme", 3.0, now_ms=1_000)
    # expect nobody to pass before the cooldown ends, then half the rate
    assert wait == 3_000
    during = throttle.acquire(Ask("slack:acme", LIMITS, flow="other"), now_ms=2_000)
    assert not during.granted and during.reason == "turn" and during.ticket >= 4_000
    status = {s.bucket: s for s in throttle.status(now_ms=2_000)}["slack:acme"]
    assert status.factor == pytest.approx(0.5)
    granted = simulate(throttle, [(2_000, ask)] * 100, until_ms=6_000)
    assert granted and min(at for at, _ in granted) >= 4_000
    assert len(granted) <= 5 * 2 + 1  # two seconds at 5/s after the cooldown
    assert status.counts.get("429") == 1


def test_the_rate_recovers_when_the_provider_stops_complaining(throttle: Throttle) -> None:
    # given a bucket cooled down once
    ask = Ask("openai:m", LIMITS)
    throttle.acquire(ask, now_ms=1_000)
    throttle.penalize("openai:m", 1.0, now_ms=1_000)
    # when 20 quiet seconds pass (recovery 0.05 per second)
    status = {s.bucket: s for s in throttle.status(now_ms=12_000)}["openai:m"]
    # expect the full rate again
    assert status.factor == pytest.approx(1.0)


def test_one_orgs_backfill_cannot_starve_another_orgs_live_meetings(throttle: Throttle) -> None:
    # given org A's backfill of 2,000 pushes already queued on a shared bucket (the LLM's)
    backfill = Ask("openai:m", LIMITS, flow="org-a", org="org-a", backfill=True)
    live = Ask("openai:m", LIMITS, flow="org-b", org="org-b")
    arrivals = [(1_000, backfill)] * 2_000 + [(20_000, live)] * 40
    # when org B's live meeting brings 40 pushes at t=20 s
    granted = simulate(throttle, arrivals, until_ms=40_000)
    # expect B's pushes all through within about twice their share of time (40 at 5/s)
    b_times = [at for at, ask in granted if ask.org == "org-b"]
    assert len(b_times) == 40
    assert max(b_times) <= 20_000 + 2 * 8_000 + 2_000
    # and A keeps its share meanwhile, and the bucket never exceeds its rate
    a_during = [at for at, ask in granted if ask.org == "org-a" and 20_000 <= at <= max(b_times)]
    assert len(a_during) >= len(b_times) // 2
    assert len(granted) <= 5 + 10 * 39


def test_within_an_org_live_goes_before_backfill(throttle: Throttle) -> None:
    # given one org's backfill running on its connection
    backfill = Ask("asana:acme", LIMITS, flow="acme", org="acme", backfill=True)
    live = Ask("asana:acme", LIMITS, flow="acme", org="acme")
    arrivals = [(1_000, backfill)] * 300 + [(5_000, live)] * 20
    # when a live meeting's 20 pushes arrive
    granted = simulate(throttle, arrivals, until_ms=20_000)
    # expect no backfill push between the first and the last live one, past the horizon
    live_times = [at for at, ask in granted if not ask.backfill]
    assert len(live_times) == 20
    between = [
        at for at, ask in granted if ask.backfill and min(live_times) + 2_000 < at < max(live_times)
    ]
    assert between == []


def test_a_slack_channel_keeps_its_own_pace_inside_the_workspace(throttle: Throttle) -> None:
    # given a workspace of 10/s and channels of 1/s (burst 2)
    per_channel = Limits(rate=1, burst=2, concurrency=1)
    asks = [
        Ask("slack:acme", LIMITS, flow=f"acme/C{n}", org="acme", flow_limits=per_channel)
        for n in range(3)
    ]
    # when each channel gets 30 messages for 10 virtual seconds
    granted = simulate(throttle, [(1_000, a) for a in asks for _ in range(30)], until_ms=11_000)
    # expect each channel at its burst plus one a second, no more
    for ask in asks:
        count = sum(1 for _, g in granted if g.flow == ask.flow)
        assert 2 + 10 - 1 <= count <= 2 + 10


def test_concurrency_slots_are_held_until_released(throttle: Throttle) -> None:
    # given a bucket with two slots
    ask = Ask("salesforce:acme", Limits(rate=100, burst=100, concurrency=2))
    first, second = (throttle.acquire(ask, now_ms=1_000) for _ in range(2))
    # when a third push asks while both are held
    third = throttle.acquire(ask, now_ms=1_000)
    # expect it to wait on the slots until one is released
    assert first.granted and second.granted
    assert not third.granted and third.reason == "slots"
    throttle.release(ask, first.lease)
    assert throttle.acquire(ask, third.ticket, now_ms=1_001).granted


def test_a_grant_holds_a_slot_for_each_write_its_request_sends_at_once(
    throttle: Throttle,
) -> None:
    # given Asana's fifteen concurrent writes, and pushes of five tasks a batch request
    batch = Ask("asana:acme", Limits(rate=100, burst=100, concurrency=15), width=5, cost=7)
    held = [throttle.acquire(batch, now_ms=1_000) for _ in range(3)]
    # when a fourth asks while three hold five slots each, and one task alone asks
    fourth = throttle.acquire(batch, now_ms=1_000)
    single = throttle.acquire(replace(batch, width=1, cost=1), now_ms=1_000)
    # expect both to wait on the slots until a batch is released, which frees all five
    assert all(d.granted for d in held)
    assert not fourth.granted and fourth.reason == "slots"
    assert not single.granted and single.reason == "slots"
    throttle.release(batch, held[0].lease)
    assert throttle.acquire(batch, fourth.ticket, now_ms=1_001).granted
    # and a width over the bucket's concurrency is held to it, never waiting forever
    wide = Ask("asana:wide", Limits(rate=100, burst=100, concurrency=2), width=5)
    assert wide.slots == 2 and throttle.acquire(wide, now_ms=1_000).granted


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        pytest.param("1s", 1.0, id="seconds"),
        pytest.param("6m0s", 360.0, id="minutes"),
        pytest.param("20ms", 0.02, id="millis"),
        pytest.param("2.5", 2.5, id="plain"),
        pytest.param("", None, id="empty"),
    ],
)
def test_openai_reset_durations(value: str, seconds: float | None) -> None:
    assert duration_s(value) == (pytest.approx(seconds) if seconds is not None else None)


def test_sforce_limit_info_is_read() -> None:
    assert parse_sforce_limit_info("api-usage=25/15000") == (25, 15000)
    both = "api-usage=25/15000; per-app-api-usage=17/250(appName=sample-app)"
    assert parse_sforce_limit_info(both) == (25, 15000)
    assert parse_sforce_limit_info(None) is None


def test_salesforce_usage_at_the_reserve_pauses_the_bucket(throttle: Throttle) -> None:
    # given a Salesforce bucket and the provider reporting 13,500 of 15,000 used
    from workers.throttle.feedback import on_salesforce_usage

    ask = Ask("salesforce:acme", Limits(rate=100, burst=100, concurrency=5))
    throttle.acquire(ask, now_ms=1_000)
    on_salesforce_usage(throttle, "salesforce:acme", 13_500, 15_000, reserve_share=0.1)
    # expect the 10% reserve kept: nothing more is granted
    decision = throttle.acquire(Ask("salesforce:acme", ask.limits, flow="x"), now_ms=1_001)
    assert not decision.granted


@pytest.mark.parametrize(
    ("early_ms", "granted"),
    [
        pytest.param(0, False, id="no-lead-re-enqueues"),
        pytest.param(500, True, id="a-near-turn-is-waited-for-in-thread"),
    ],
)
def test_a_turn_a_few_ms_away_is_waited_for_not_re_enqueued(early_ms: int, granted: bool) -> None:
    # given a bucket of 10/s with no burst to spare: the next turn is 100 ms away
    throttle = MemoryThrottle(Tuning(early_ms=early_ms))
    ask = Ask("asana:acme", Limits(rate=10, burst=1, concurrency=100))
    assert admit(throttle, ask).granted
    # when the next push asks
    decision = admit(throttle, ask)
    # expect it granted after a short in-thread wait, or told to come back (a little early)
    assert decision.granted is granted
    if not granted:
        assert 0 < redelivery_ms(throttle, decision) <= decision.wait_ms


class CountingSync(MemoryThrottle):
    """A memory throttle that counts the syncs it is asked for (each a round trip on Redis)."""

    def __init__(self) -> None:
        super().__init__()
        self.syncs: list[float] = []

    def sync(
        self, bucket: str, remaining: float, hold_s: float = 60.0, now_ms: int | None = None
    ) -> int:
        self.syncs.append(remaining)
        return super().sync(bucket, remaining, hold_s, now_ms)


@pytest.mark.parametrize(
    ("used", "synced"),
    [
        pytest.param(1_000, False, id="plenty-left-no-round-trip"),
        pytest.param(13_390, False, id="burst-and-slots-still-covered"),
        pytest.param(13_420, True, id="within-burst-plus-slots-synced"),
        pytest.param(13_500, True, id="at-the-reserve-synced"),
    ],
)
def test_a_report_that_cannot_bind_the_bucket_costs_no_sync(used: int, synced: bool) -> None:
    # given a Salesforce bucket (burst 100, 5 writes in flight) and its daily budget of 15,000
    from workers.throttle.feedback import on_salesforce_usage

    throttle = CountingSync()
    ask = Ask("salesforce:acme", Limits(rate=100, burst=100, concurrency=5))
    throttle.acquire(ask, now_ms=1_000)
    # when the provider reports what is used (13,500 usable above the 10 % reserve)
    on_salesforce_usage(throttle, ask.bucket, used, 15_000, 0.1, ask.limits)
    # expect a sync only when what is left could bind the bucket
    assert bool(throttle.syncs) is synced
