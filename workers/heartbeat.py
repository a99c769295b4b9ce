"""A worker's readiness, and the gauges only a worker can read, every `interval_s`.

Readiness is a file: while the database (at its migrations' head), the broker and Redis
answer, the middleware touches `MEETSYNC_READY_FILE` (default
`/tmp/meetsync-worker-ready`); when one does not, it removes it. The Kubernetes readiness
probe asks for a file younger than a minute (`find … -mmin -1`), so a worker whose
heartbeat thread died reads as not ready too. Liveness is dramatiq's metrics server
(`:9191/metrics`), served by the worker's main process.

The same beat sets `meetsync_queue_depth{queue}` (ready messages of each declared queue)
and `meetsync_throttle_utilisation{bucket}` from the throttle's own status.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import dramatiq
from dramatiq import Broker

from meetsync import health, metrics
from meetsync.settings import Settings
from workers.throttle.buckets import Throttle

log = logging.getLogger("workers.heartbeat")

READY_FILE = "/tmp/meetsync-worker-ready"


class Heartbeat(dramatiq.Middleware):
    """Touches the ready file while the worker's dependencies answer; reads queue gauges."""

    def __init__(
        self, settings: Settings, throttle: Throttle | None = None, interval_s: float = 10.0
    ) -> None:
        self.settings = settings
        self.throttle = throttle
        self.interval_s = interval_s
        self.path = Path(os.environ.get("MEETSYNC_READY_FILE", READY_FILE))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready: bool | None = None

    def after_worker_boot(self, broker: Broker, worker: Any) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(broker,), name="meetsync-heartbeat", daemon=True
        )
        self._thread.start()

    def before_worker_shutdown(self, broker: Broker, worker: Any) -> None:
        # draining: no new pods' traffic should count on this one
        self._stop.set()
        self.path.unlink(missing_ok=True)

    def _run(self, broker: Broker) -> None:
        while not self._stop.is_set():
            self.beat(broker)
            self._stop.wait(self.interval_s)

    def beat(self, broker: Broker) -> bool:
        """One round: readiness file and gauges; whether the worker is ready."""
        answers = health.readiness(self.settings)
        ready = health.ready(answers)
        if ready:
            self.path.touch()
        else:
            self.path.unlink(missing_ok=True)
        if ready != self._ready:
            failing = {k: v for k, v in answers.items() if v != health.OK}
            log.log(
                logging.INFO if ready else logging.WARNING,
                "worker %s",
                "ready" if ready else "not ready",
                extra={"event": "readiness", "ready": ready, "reason": str(failing or "")},
            )
            self._ready = ready
        if ready:
            try:
                self._gauges(broker)
            except Exception as exc:  # a gauge missed this round is not worth a crash
                log.warning("queue gauges failed: %s", type(exc).__name__)
        return ready

    def _gauges(self, broker: Broker) -> None:
        for queue in sorted(broker.get_declared_queues()):
            metrics.QUEUE_DEPTH.labels(queue).set(queue_depth(broker, queue))
        if self.throttle is not None:
            for status in self.throttle.status():
                slots = status.slots_held / status.concurrency if status.concurrency else 0.0
                tokens = 1 - status.tokens / status.burst if status.burst else 0.0
                metrics.THROTTLE_UTILISATION.labels(status.bucket).set(
                    round(max(slots, tokens, 0.0), 4)
                )


def queue_depth(broker: Broker, queue: str) -> int:
    """Ready messages in `queue` (what KEDA scales on), for Redis, RabbitMQ or the stub."""
    counts = getattr(broker, "get_queue_message_counts", None)
    if counts is not None:  # RabbitMQ: (ready, delayed, dead)
        return int(counts(queue)[0])
    client = getattr(broker, "client", None)
    if client is not None:  # Redis: the queue is the list `<namespace>:<queue>`
        return int(client.llen(f"{broker.namespace}:{queue}"))  # type: ignore[attr-defined]
    queues = getattr(broker, "queues", {})
    return int(queues[queue].qsize()) if queue in queues else 0
