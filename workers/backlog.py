"""What a broker still holds for a queue: the sweeper's sign that work is queued, not lost."""

from __future__ import annotations

from dramatiq import Broker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name


def queued(broker: Broker, queue_name: str) -> int | None:
    """Messages of a queue still waiting, its delayed ones included (and, where the broker
    can tell, those a worker holds); None when the broker cannot say."""
    if isinstance(broker, StubBroker):
        queues = [broker.queues.get(name) for name in (queue_name, dq_name(queue_name))]
        return sum(q.unfinished_tasks for q in queues if q is not None)
    qsize = getattr(broker, "do_qsize", None)  # Redis: ready, delayed and unacked
    if qsize is not None:
        return int(qsize(queue_name))
    counts = getattr(broker, "get_queue_message_counts", None)  # RabbitMQ: ready and delayed
    if counts is not None:
        ready, delayed, _dead = counts(queue_name)
        return int(ready) + int(delayed)
    return None
