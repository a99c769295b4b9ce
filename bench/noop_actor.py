"""dramatiq's floor for `bench.pipeline`: a no-op actor on the bench's broker.

Run by `dramatiq bench.noop_actor` with the broker URL in `BENCH_NOOP_BROKER`; the bench
times how long the workers take to empty its queue.
"""

from __future__ import annotations

import os

import dramatiq

from workers.broker import make_broker

BROKER_URL = os.environ.get("BENCH_NOOP_BROKER", "redis://127.0.0.1:6379/10?namespace=noop")
QUEUE = "bench_noop"

broker = make_broker(BROKER_URL)
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def noop(i: int) -> None:
    """Nothing at all: what is left is dramatiq's own cost per message."""
