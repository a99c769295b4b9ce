"""Backfill consumers fetch nothing while live messages are being sent (real Redis)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import dramatiq
import pytest

from workers.backlog import queued
from workers.broker import LiveHold, WakingConsumer, WakingRedisBroker, Yielding, make_broker
from workers.lanes import is_backfill_queue


@pytest.fixture
def broker(redis_url: str) -> Any:
    url = f"{redis_url}?namespace=yield{uuid.uuid4().hex[:8]}"
    made = make_broker(url, backfill_yield=Yielding(after_live_ms=60_000, max_ms=60_000))
    assert isinstance(made, WakingRedisBroker)
    yield made
    made.close()


@pytest.fixture
def trickling(redis_url: str) -> Any:
    """A broker whose processes run one backfill message beside live work."""
    made = _broker(redis_url, Yielding(after_live_ms=60_000, max_ms=60_000, live_inflight=1))
    yield made
    made.close()


def _broker(redis_url: str, yielding: Yielding) -> WakingRedisBroker:
    made = make_broker(
        f"{redis_url}?namespace=yield{uuid.uuid4().hex[:8]}", backfill_yield=yielding
    )
    assert isinstance(made, WakingRedisBroker)
    return made


def _actors(broker: WakingRedisBroker) -> tuple[Any, Any]:
    def extract(n: int) -> None:
        return None

    live = dramatiq.actor(broker=broker, actor_name="extract", queue_name="extract")(extract)
    backfill = dramatiq.actor(
        broker=broker, actor_name="extract_backfill", queue_name="extract.backfill"
    )(extract)
    return live, backfill


def _consumer(broker: WakingRedisBroker, queue: str) -> WakingConsumer:
    consumer = broker.consume(queue, prefetch=1, timeout=1)
    assert isinstance(consumer, WakingConsumer)
    return consumer


@pytest.mark.parametrize(
    ("queue", "backfill"),
    [
        pytest.param("extract", False, id="live"),
        pytest.param("push.slack.returns", False, id="live-returns"),
        pytest.param("extract.backfill", True, id="backfill"),
        pytest.param("push.slack.backfill.returns", True, id="backfill-returns"),
        pytest.param("push.asana.backfill.DQ", True, id="backfill-delayed"),
        pytest.param("backfill", False, id="a-queue-named-backfill-is-no-lane"),
    ],
)
def test_which_queues_are_backfill_lanes(queue: str, backfill: bool) -> None:
    assert is_backfill_queue(queue) is backfill


def test_with_no_live_message_a_backfill_message_is_fetched(broker: WakingRedisBroker) -> None:
    _, backfill = _actors(broker)
    backfill.send(1)
    found = next(_consumer(broker, "extract.backfill"))
    assert found is not None and found.args == (1,)


def test_after_a_live_message_backfill_is_left_queued_and_live_is_fetched(
    broker: WakingRedisBroker,
) -> None:
    # given a backfill message queued
    live, backfill = _actors(broker)
    backfill.send(1)
    # when a live meeting's message is sent
    live.send(2)
    # expect the backfill consumer to fetch nothing, the live one to fetch at once
    held_back = _consumer(broker, "extract.backfill")
    assert held_back._yield_ms() > 0
    assert next(held_back) is None
    assert queued(broker, "extract.backfill") == 1
    found = next(_consumer(broker, "extract"))
    assert found is not None and found.args == (2,)


def test_a_backfill_message_marks_no_live_work(broker: WakingRedisBroker) -> None:
    _, backfill = _actors(broker)
    backfill.send(1)
    assert broker.live_for_ms() == -1


def test_yielding_long_enough_allows_one_fetch_then_yields_again(
    broker: WakingRedisBroker,
) -> None:
    # given a backfill consumer that has yielded to live work for its longest run
    live, backfill = _actors(broker)
    backfill.send(1)
    backfill.send(2)
    live.send(3)
    consumer = _consumer(broker, "extract.backfill")
    assert next(consumer) is None
    assert consumer.hold is not None
    consumer.hold.since = time.monotonic() - 61  # its run began past `max_ms` ago
    # expect one fetch, then yielding again
    found = next(consumer)
    assert found is not None and found.args == (1,)
    consumer.ack(found)
    assert consumer._yield_ms() > 0


def test_yielding_off_fetches_backfill_during_live_work(redis_url: str) -> None:
    broker = _broker(redis_url, Yielding(after_live_ms=0))
    live, backfill = _actors(broker)
    backfill.send(1)
    live.send(2)
    found = next(_consumer(broker, "extract.backfill"))
    assert found is not None and found.args == (1,)
    broker.close()


def test_the_feeder_holds_back_after_a_live_message(broker: WakingRedisBroker) -> None:
    live, backfill = _actors(broker)
    hold = LiveHold(broker)
    backfill.send(1)
    assert hold.ms() == 0
    live.send(2)
    assert 0 < hold.ms() <= 60_000


def test_after_its_longest_hold_a_backfill_runs_free_for_its_share(redis_url: str) -> None:
    # given a backfill feeder with a fifth of the time, live work marked in flight
    broker = _broker(redis_url, Yielding(after_live_ms=60_000, max_ms=8_000, share=0.2))
    live, _ = _actors(broker)
    live.send(1)
    hold = LiveHold(broker)
    assert hold.ms() > 0
    # when it has held back for its longest run
    assert hold.since is not None
    hold.since -= 9
    # expect it to run free for 2 s (8 s · 0.2 / 0.8), live work still marked, then hold again
    assert hold.ms() == 0 and not hold.escaped
    assert 1.9 < hold.free_until - time.monotonic() <= 2.0
    assert hold.ms() == 0
    hold.free_until = time.monotonic() - 0.001
    assert hold.ms() > 0
    broker.close()


def test_the_settings_name_the_yielding_workers_and_the_feeder_use() -> None:
    from meetsync.settings import Settings

    settings = Settings(
        backfill_yield_ms=1_500,
        backfill_yield_max_ms=4_000,
        backfill_yield_share=0.5,
        backfill_live_inflight=2,
    )
    assert Yielding.of(settings) == Yielding(
        after_live_ms=1_500, max_ms=4_000, share=0.5, live_inflight=2
    )
    assert Yielding.of(settings).free_ms == 4_000


def test_beside_live_work_a_process_runs_one_backfill_message_at_a_time(
    trickling: WakingRedisBroker,
) -> None:
    # given backfill messages on two queues, live work marked, one message allowed beside it
    live, backfill = _actors(trickling)
    other = dramatiq.actor(
        broker=trickling, actor_name="push_backfill", queue_name="push.backfill"
    )(lambda n: None)
    backfill.send(1)
    backfill.send(2)
    other.send(3)
    live.send(4)
    extracting, pushing = (
        _consumer(trickling, "extract.backfill"),
        _consumer(trickling, "push.backfill"),
    )
    # expect one fetched, and nothing more from either queue while it runs
    first = next(extracting)
    assert first is not None and first.args == (1,)
    assert next(extracting) is None and next(pushing) is None
    assert trickling.backfill_in_flight() == 1
    # when it ends, expect the next one beside live work, still one at a time
    extracting.ack(first)
    assert trickling.trickle_freed.is_set()
    found = next(pushing)
    assert found is not None and found.args == (3,)
    assert next(extracting) is None
    assert queued(trickling, "extract.backfill") == 1
    trickling.close()


def test_a_consumer_restarted_after_a_lost_connection_replaces_the_last_in_the_count(
    trickling: WakingRedisBroker,
) -> None:
    # given a backfill message held by a consumer whose connection was then lost
    live, backfill = _actors(trickling)
    backfill.send(1)
    backfill.send(2)
    live.send(3)
    assert next(_consumer(trickling, "extract.backfill")) is not None
    assert trickling.backfill_in_flight() == 1
    # expect the consumer dramatiq starts in its place to count alone, and trickle on
    restarted = _consumer(trickling, "extract.backfill")
    assert trickling.backfill_in_flight() == 0
    found = next(restarted)
    assert found is not None and found.args == (2,)
    trickling.close()


def test_the_feeder_keeps_a_few_meetings_queued_for_the_trickle_beside_live_work(
    trickling: WakingRedisBroker,
) -> None:
    from types import SimpleNamespace

    from cli.backfill import FEED_AHEAD, _live_hold

    live, backfill = _actors(trickling)
    live.send(0)
    hold = _live_hold(SimpleNamespace(broker=trickling))
    for n in range(FEED_AHEAD):
        assert hold() == 0  # fewer than FEED_AHEAD queued: store the next one
        backfill.send(n)
    assert hold() > 0  # enough queued ahead of the trickle: yield to live work
    trickling.close()


def test_a_delayed_backfill_message_held_for_its_time_blocks_no_trickle(
    trickling: WakingRedisBroker,
) -> None:
    # given a backfill message delayed for a minute, held by its delay queue's consumer
    live, backfill = _actors(trickling)
    backfill.send_with_options(args=(1,), delay=60_000)
    backfill.send(2)
    live.send(3)
    assert next(_consumer(trickling, "extract.backfill.DQ")) is not None
    # expect it not to count: the next backfill message still runs beside live work
    assert trickling.backfill_in_flight() == 0
    found = next(_consumer(trickling, "extract.backfill"))
    assert found is not None and found.args == (2,)
