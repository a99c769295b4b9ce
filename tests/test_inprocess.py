"""The embedded broker's join: waits for a busy pipeline without starting threads."""

from __future__ import annotations

import threading
import time

import dramatiq
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker

from workers.inprocess import drain, unfinished


def test_joining_a_busy_queue_starts_no_thread_per_poll() -> None:
    # given a stub broker whose one queue stays busy for about a second
    broker = StubBroker()
    done: list[int] = []

    @dramatiq.actor(broker=broker, queue_name="busy", max_retries=0)
    def slow(n: int) -> None:
        time.sleep(0.1)
        done.append(n)

    worker = Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        for n in range(10):
            slow.send(n)
        baseline = threading.active_count()
        peak = baseline
        watcher_stop = threading.Event()

        def watch() -> None:
            nonlocal peak
            while not watcher_stop.is_set():
                peak = max(peak, threading.active_count())
                time.sleep(0.01)

        watcher = threading.Thread(target=watch)
        watcher.start()
        # when the pipeline is joined while it works
        drain(broker, timeout_s=30)
        watcher_stop.set()
        watcher.join()
    finally:
        worker.stop()
    # expect every message handled, nothing left, and no thread started by the join
    assert sorted(done) == list(range(10))
    assert unfinished(broker) == 0
    assert peak <= baseline + 1  # the watcher itself
