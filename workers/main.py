"""Entry module for `dramatiq workers.main`: broker and actors from the environment's settings.

Besides the pipeline's own middleware, a worker process runs dramatiq's `Prometheus`
(message counts, durations, retries, rejects; every process's values served by the main
process on `dramatiq_prom_port`, 9191, from `PROMETHEUS_MULTIPROC_DIR`, which
`meetsync worker` sets) and the `Heartbeat` (the readiness file, queue depths, bucket use).
"""

from __future__ import annotations

import dramatiq
from dramatiq.middleware.prometheus import Prometheus

from meetsync.logging import configure
from meetsync.settings import get_settings
from workers.actors import declare
from workers.broker import Yielding, make_broker
from workers.heartbeat import Heartbeat
from workers.runtime import Runtime

settings = get_settings()
configure(settings.log_level, settings.log_format)
broker = make_broker(
    settings.broker_url,
    idle_poll_ms=settings.broker_idle_poll_ms,
    wakeups=settings.broker_wakeups,
    backfill_yield=Yielding.of(settings),
)
broker.add_middleware(Prometheus())
dramatiq.set_broker(broker)
pipeline = declare(broker, Runtime(settings))
broker.add_middleware(Heartbeat(settings, pipeline.throttling.throttle))
