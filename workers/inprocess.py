"""The embedded default: a stub broker with a worker thread inside the API process."""

from __future__ import annotations

import time

from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker
from dramatiq.errors import QueueJoinTimeout

from meetsync.settings import Settings
from workers.actors import Pipeline, declare
from workers.broker import make_broker
from workers.runtime import Runtime


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
        deadline = time.monotonic() + timeout_s
        clean_passes = 0
        while clean_passes < 2:
            if time.monotonic() > deadline:
                raise TimeoutError("pipeline did not drain")
            busy = False
            for name in [q for q in list(broker.queues) if not q.endswith(".DQ")]:
                try:
                    broker.join(name, timeout=100, fail_fast=False)
                except QueueJoinTimeout:
                    busy = True
            clean_passes = 0 if busy else clean_passes + 1

    def stop(self) -> None:
        self.worker.stop()
