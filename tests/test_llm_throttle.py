"""The LLM's RPM and TPM, spent through the workers' throttle: no 429s, no retries spent.

The emulator keeps OpenAI's per-minute token buckets on a clock that runs SPEED times
faster, so a minute of limits passes in seconds; the throttle is given the same limits in
real time. The workload asks for several times what the emulator holds, so only spacing
the calls to its limit avoids its 429s.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dramatiq import Worker
from dramatiq.middleware import Middleware

from admin.meeting_store import store_meeting
from meetsync.bootstrap import seed_demo
from meetsync.db.migrate import upgrade
from meetsync.db.models import Meeting
from meetsync.db.session import session_scope
from meetsync.models import MeetingOutput
from meetsync.settings import LLMModelLimits, Settings
from sandbox.server import Sandbox
from sandbox.settings_for import settings_for
from workers.actors import declare
from workers.broker import make_broker
from workers.runtime import Runtime
from workers.throttle.buckets import Ask, Throttle
from workers.throttle.feedback import on_llm_headers
from workers.throttle.limits import asks_for_llm
from workers.throttle.memory import MemoryThrottle
from workers.throttle.redis import RedisThrottle

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "meetsync" / "samples" / "initech_qbr.json"
MAPPING = ROOT / "mappings" / "examples" / "acme.yaml"
SPEED = 20.0  # one emulator minute lasts three real seconds


class FastClock:
    """The emulator's monotonic clock, SPEED times faster than the real one."""

    def __init__(self) -> None:
        self.origin = time.monotonic()

    def __call__(self) -> float:
        return (time.monotonic() - self.origin) * SPEED


class Failures(Middleware):
    """Every failed attempt of an actor: each one would spend a retry."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        if exception is not None:
            self.seen.append(f"{message.actor_name}: {type(exception).__name__}")


@pytest.fixture
def limited() -> Iterator[Sandbox]:
    options = {"openai": {"rpm": 60, "tpm": 24_000, "clock": FastClock()}}
    with Sandbox(only=["openai"], options=options) as running:
        yield running


def _settings(sandbox: Sandbox, sqlite_url: str) -> Settings:
    """The emulator's limits as real-time rates; a 10% margin absorbs arrival jitter."""
    base = settings_for(sandbox, database_url=sqlite_url, broker_url="stub")
    per_minute = LLMModelLimits(rpm=60 * SPEED, tpm=24_000 * SPEED, burst_s=60 / SPEED)
    throttle = base.throttle.model_copy(
        update={"llm_limits": {"*": per_minute}, "headroom": 0.9, "backend": "memory"}
    )
    llm = base.llm.model_copy(update={"max_output_tokens": 1_000})
    return base.model_copy(update={"throttle": throttle, "llm": llm})


def _store_meetings(settings: Settings, count: int) -> list[str]:
    upgrade(settings.database_url)
    sample = json.loads(SAMPLE.read_text())
    ids = []
    with session_scope(settings.database_url) as session:
        seed_demo(session, settings, MAPPING)
        for i in range(count):
            # a different title each: no meeting shares another's extraction cache
            meeting = MeetingOutput.model_validate(
                {**sample, "meeting_id": f"qbr-{i}", "title": f"{sample['title']} #{i}"}
            )
            ids.append(store_meeting(session, meeting).meeting_id)
    return ids


def _statuses(settings: Settings, ids: list[str]) -> dict[str, str]:
    with session_scope(settings.database_url) as session:
        return {i: m.status for i in ids if (m := session.get(Meeting, i)) is not None}


def test_meetings_extracted_by_workers_stay_inside_the_models_limits(
    limited: Sandbox, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # given: 16 meetings, whose 32 calls ask for about three times the emulator's TPM bucket
    settings = _settings(limited, sqlite_url)
    ids = _store_meetings(settings, 16)
    broker = make_broker("stub")
    failures = Failures()
    broker.add_middleware(failures)
    pipeline = declare(broker, Runtime(settings))
    worker = Worker(
        broker, queues={"extract", "extract.returns"}, worker_threads=4, worker_timeout=50
    )

    # when: four worker threads extract them all
    for meeting_id in ids:
        pipeline.enqueue_extract(meeting_id)
    worker.start()
    try:
        deadline = time.monotonic() + 120
        # extraction plans in the same message: planned is past extracted
        while not set(_statuses(settings, ids).values()) <= {"extracted", "planned"}:
            assert time.monotonic() < deadline, _statuses(settings, ids)
            time.sleep(0.1)
    finally:
        worker.stop()

    # expect: every call answered, none refused with a 429, no retry spent
    openai = limited.providers["openai"]
    log: list[dict[str, Any]] = openai.snapshot()["requests"]
    assert openai.stats()["http_429"] == 0
    assert failures.seen == []
    assert len(log) == 2 * len(ids)
    # the workload was far over what the emulator holds at once: only spacing avoided 429s
    asked = sum(r["prompt_tokens"] + r["max_output_tokens"] for r in log)
    assert asked > 2.5 * 24_000
    buckets = {s.bucket: s for s in pipeline.throttling.throttle.status()}
    tokens = next(s for name, s in buckets.items() if name.endswith(":tokens"))
    assert tokens.counts.get("granted", 0) >= len(ids)
    assert sum(v for k, v in tokens.counts.items() if k != "granted") > 0  # calls waited
    assert "429" not in tokens.counts
    # a come-back is the middleware's business: dramatiq never sees a result to discard
    assert not [r for r in caplog.records if "Results middleware" in r.getMessage()]


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_reservation_is_all_or_nothing(backend: str, request: pytest.FixtureRequest) -> None:
    # given: a requests bucket with room and a tokens bucket without
    throttle: Throttle = MemoryThrottle()
    if backend == "redis":
        throttle = RedisThrottle.from_url(request.getfixturevalue("redis_url"))
    requests, tokens = asks_for_llm(Settings(), "gpt-4o-mini", "acme")
    big = Ask(tokens.bucket, tokens.limits, cost=float(tokens.limits.burst), flow="acme")
    assert throttle.acquire(big).granted
    first = throttle.acquire(requests)
    assert first.granted

    # when: the requests bucket's grant is given back because the tokens bucket said wait
    throttle.refund(requests, first.lease, 1.0)

    # expect: its token and its slot are back (a token refills in 120 ms: not that)
    status = {s.bucket: s for s in throttle.status()}[requests.bucket]
    assert status.tokens == pytest.approx(requests.limits.burst, abs=0.3)
    assert status.slots_held == 0


@pytest.mark.parametrize(
    ("headers", "status", "cooled"),
    [
        pytest.param(
            {"x-ratelimit-remaining-requests": "0", "x-ratelimit-remaining-tokens": "9000",
             "retry-after": "3"}, 429, {"requests"}, id="out-of-requests",
        ),
        pytest.param(
            {"x-ratelimit-remaining-requests": "40", "x-ratelimit-remaining-tokens": "0",
             "retry-after-ms": "2500"}, 429, {"tokens"}, id="out-of-tokens",
        ),
        pytest.param(
            {"x-ratelimit-limit-tokens": "200000", "x-ratelimit-remaining-tokens": "100",
             "x-ratelimit-reset-tokens": "59.9s", "x-ratelimit-remaining-requests": "400"},
            200, {"tokens"}, id="reserved-more-than-left",
        ),
    ],
)  # fmt: skip
@pytest.mark.parametrize("limits_known", [False, True], ids=["always-sync", "sync-if-binding"])
def test_the_llms_headers_empty_the_bucket_that_ran_out(
    headers: dict[str, str], status: int, cooled: set[str], limits_known: bool
) -> None:
    # given: both buckets of a model, used once
    throttle = MemoryThrottle()
    requests, tokens = asks_for_llm(Settings(), "gpt-4o-mini", "acme")
    for ask in (requests, tokens):
        throttle.acquire(ask)

    # when: the provider answers, while this worker still holds 500 reserved tokens
    # (knowing the buckets' limits, a report that cannot bind one skips its sync: same end)
    limits = {a.bucket: a.limits for a in (requests, tokens)} if limits_known else None
    on_llm_headers(
        throttle, requests.bucket, tokens.bucket, headers, status=status,
        in_hand={tokens.bucket: 500.0}, limits=limits,
    )  # fmt: skip

    # expect: only the exhausted bucket is emptied; the other keeps what it had
    empty = {s.bucket for s in throttle.status() if s.tokens < 0.05 * s.burst}
    names = {"requests": requests.bucket, "tokens": tokens.bucket}
    assert empty == {names[k] for k in cooled}


class FirstSeen(Middleware):
    """The meetings in the order a worker first picked up their extraction."""

    def __init__(self) -> None:
        self.order: list[str] = []

    def before_process_message(self, broker: Any, message: Any) -> None:
        if message.actor_name.startswith("extract") and message.args[0] not in self.order:
            self.order.append(message.args[0])


def test_a_live_meeting_is_extracted_before_a_backfill_queued_ahead_of_it(
    limited: Sandbox, sqlite_url: str
) -> None:
    # given 20 backfilled meetings queued, then one live meeting
    settings = _settings(limited, sqlite_url)
    *replayed, live = _store_meetings(settings, 21)
    broker = make_broker("stub")
    seen = FirstSeen()
    broker.add_middleware(seen)
    pipeline = declare(broker, Runtime(settings))
    for meeting_id in replayed:
        pipeline.enqueue_extract(meeting_id, backfill=True)
    pipeline.enqueue_extract(live)
    queues = broker.queues  # type: ignore[attr-defined]
    assert (queues["extract.backfill"].qsize(), queues["extract"].qsize()) == (20, 1)

    # when one worker thread starts on them
    worker = Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        deadline = time.monotonic() + 60
        # extracted, or already past it: the plan stage can follow faster than a poll
        while _statuses(settings, [live])[live] not in {"extracted", "planned"}:
            assert time.monotonic() < deadline, seen.order
            time.sleep(0.05)
    finally:
        worker.stop()

    # expect the live meeting among the first picked up, not after the 20 queued before it
    assert live in seen.order[:3], seen.order
