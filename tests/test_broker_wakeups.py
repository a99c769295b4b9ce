"""The Redis broker wakes an idle consumer when a message is sent, instead of at its poll."""

from __future__ import annotations

import time
import uuid
from typing import Any

import dramatiq
import pytest
from dramatiq.common import current_millis

from workers.broker import WakingConsumer, WakingRedisBroker, make_broker

GENEROUS_S = 10  # a bound on a hang, never a latency claim


@pytest.fixture
def url(redis_url: str) -> str:
    return f"{redis_url}?namespace=wake{uuid.uuid4().hex[:8]}"


def _consumer(broker: WakingRedisBroker, queue: str) -> WakingConsumer:
    consumer = broker.consume(queue, prefetch=1, timeout=1000)
    assert isinstance(consumer, WakingConsumer)
    return consumer


def _with_actor(url: str, **options: Any) -> tuple[WakingRedisBroker, Any]:
    """A Redis broker (`make_broker` options) and the sample actor declared on it."""
    broker = make_broker(url, **options)
    assert isinstance(broker, WakingRedisBroker)
    return broker, _sample_actor(broker)


def _sample_actor(broker: Any) -> Any:
    @dramatiq.actor(broker=broker, queue_name="wake", actor_name="wake_sample")
    def sample(n: int) -> None:
        return None

    return sample


def test_a_message_sent_by_another_process_wakes_the_idle_consumer(url: str) -> None:
    # given a worker's broker consuming an empty queue, subscribed to its wake-ups
    worker = make_broker(url, idle_poll_ms=1000)
    producer = make_broker(url)
    assert isinstance(worker, WakingRedisBroker)
    _sample_actor(worker)
    actor = _sample_actor(producer)
    consumer = _consumer(worker, "wake")
    assert consumer.woken.wait(GENEROUS_S)  # the listener wakes everyone once subscribed
    consumer.woken.clear()
    # when the webhook's broker sends a message
    actor.send(1)
    # expect the consumer's wake-up set by the announcement, and the message fetched
    assert consumer.woken.wait(GENEROUS_S)
    found = next(consumer)
    assert found is not None and found.args == (1,)
    worker.close()
    producer.close()


def test_without_wakeups_the_consumer_is_not_woken(url: str) -> None:
    worker, actor = _with_actor(url, idle_poll_ms=1000, wakeups=False)
    consumer = _consumer(worker, "wake")
    actor.send(1)
    assert not consumer.woken.is_set()
    worker.close()


def test_a_held_delayed_message_shortens_the_wait_to_its_eta(url: str) -> None:
    # given a delay queue's consumer that handed the worker a message due in a minute
    broker, actor = _with_actor(url, idle_poll_ms=1000)
    consumer = _consumer(broker, "wake.DQ")
    actor.send_with_options(args=(1,), delay=60_000)
    held = next(consumer)
    assert held is not None and "eta" in held.options
    # expect an idle wait no longer than until it falls due, and none once it is due
    before = current_millis()
    assert 0 < consumer._until_due(1000) <= held.options["eta"] - before + 1
    consumer.etas = [current_millis() - 1]
    assert consumer._until_due(1000) == 0
    assert consumer._until_due(1000) == 1000
    broker.close()


def _count_fetches(broker: WakingRedisBroker) -> list[int]:
    """Wrap the broker's fetch (one Lua call to Redis) to count them."""
    calls: list[int] = []
    fetch = broker.do_fetch

    def counted(queue: str, wanted: int) -> Any:
        calls.append(wanted)
        return fetch(queue, wanted)

    broker.do_fetch = counted  # type: ignore[method-assign]
    return calls


def test_an_idle_consumer_fetches_again_only_when_woken(url: str) -> None:
    # given a consumer whose queue came up empty, subscribed to its wake-ups, a minute's
    # idle poll, and its waits cut short (the test does not sit them out)
    broker, actor = _with_actor(url, idle_poll_ms=60_000)
    consumer = broker.consume("wake", prefetch=1, timeout=60_000)
    assert isinstance(consumer, WakingConsumer)
    assert consumer.woken.wait(GENEROUS_S)  # the listener's first wake-all: subscribed
    waits: list[float] = []
    consumer.woken.wait = lambda timeout=None: bool(waits.append(timeout or 0))  # type: ignore[method-assign]
    fetches = _count_fetches(broker)
    assert next(consumer) is None
    assert len(fetches) == 1
    # when the worker asks again and again without a wake-up (dramatiq's back-off re-polls)
    for _ in range(5):
        assert next(consumer) is None
    # expect no fetch, each wait up to the idle poll; and one once a message is announced
    assert len(fetches) == 1
    assert all(wait > 50 for wait in waits)
    actor.send(7)
    for _ in range(GENEROUS_S * 100):
        if consumer.woken.is_set():
            break
        time.sleep(0.01)
    found = next(consumer)
    assert found is not None and found.args == (7,)
    assert len(fetches) == 2
    broker.close()


def test_a_consumer_at_its_prefetch_limit_fetches_when_an_ack_frees_a_slot(url: str) -> None:
    # given a consumer with one slot, holding one message while another waits in the queue
    broker, actor = _with_actor(url, idle_poll_ms=60_000, wakeups=True)
    consumer = _consumer(broker, "wake")
    actor.send(1)
    actor.send(2)
    consumer.woken.set()
    first = next(consumer)
    assert first is not None and first.args == (1,)
    consumer.woken.clear()
    assert next(consumer) is None  # no free slot: nothing fetched, nothing lost
    # when the worker acks the first
    consumer.ack(first)
    # expect the consumer woken and the second fetched
    assert consumer.woken.is_set()
    second = next(consumer)
    assert second is not None and second.args == (2,)
    broker.close()
