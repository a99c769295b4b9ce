"""The embedded default: a stub broker with a worker thread inside the API process."""

from __future__ import annotations

import time

from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker

from meetsync.settings import Settings
from workers.actors import Pipeline, declare
from workers.broker import make_broker
from workers.runtime import Runtime

POLL_S = 0.05


class InProcessWorkers:
    """Starts the pipeline's actors on a stub broker with `threads` worker threads."""

    def __init__(self, settings: Settings, threads: int = 4) -> None:
        broker = make_broker("stub")
        self.pipeline: Pipeline = declare(broker, Runtime(settings))
        self.worker = Worker(broker, worker_threads=threads, worker_timeout=100)

    def start(self) -> Pipeline:
        self.worker.start()
        return self.pipeline

    def join(self, timeout_s: float = 60.0) -> None:
        """Wait until every queue, delayed messages included, is empty twice in a row."""
        broker = self.pipeline.broker
        assert isinstance(broker, StubBroker)
        drain(broker, timeout_s)

    def stop(self) -> None:
        self.worker.stop()


def unfinished(broker: StubBroker) -> int:
    """Messages enqueued or delayed and not yet acknowledged, over every queue."""
    return sum(queue.unfinished_tasks for queue in list(broker.queues.values()))


def drain(broker: StubBroker, timeout_s: float) -> None:
    """Wait until `broker` has no unfinished message on two polls in a row.

    Polls the queues' counters: dramatiq's own `StubBroker.join(timeout=…)` starts a thread
    per call that stays blocked until the queue empties, so joining a busy queue in a loop
    piles threads up.
    """
    deadline = time.monotonic() + timeout_s
    clean_passes = 0
    while clean_passes < 2:
        if time.monotonic() > deadline:
            raise TimeoutError("pipeline did not drain")
        clean_passes = 0 if unfinished(broker) else clean_passes + 1
        time.sleep(POLL_S)
