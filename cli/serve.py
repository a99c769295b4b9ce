"""`meetsync serve` and `meetsync worker`."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import uvicorn

from cli.infrastructure import check_services
from meetsync.bootstrap import sync_connections
from meetsync.db.migrate import upgrade
from meetsync.db.session import POOL_SIZE_ENV, session_scope
from meetsync.logging import configure
from meetsync.settings import Settings, missing_secrets

POOL_SPARE = 2  # database connections a worker process keeps beyond one per thread


class NotConfigured(SystemExit):
    """Production mode without its secrets: refuse to start, saying what to set."""


def require_secrets(settings: Settings) -> None:
    """Outside demo mode, exit with what is missing and how to make it."""
    missing = missing_secrets(settings)
    if missing:
        lines = "\n".join(f"- {m}" for m in missing)
        print(
            f"meetsync will not start: production mode needs these settings.\n{lines}\n"
            "(MEETSYNC_MODE=demo runs with the public demo secrets: for a laptop only.)",
            file=sys.stderr,
        )
        raise NotConfigured(2)


def prepare(settings: Settings) -> None:
    """Secrets present, schema up to date and declared connections stored before serving."""
    require_secrets(settings)
    check_services(settings)
    upgrade(settings.database_url)
    with session_scope(settings.database_url) as session:
        sync_connections(session, settings)


def run_server(settings: Settings, host: str, port: int, threads: int) -> None:
    from intake.app import create_app
    from workers.actors import declare
    from workers.broker import make_broker
    from workers.inprocess import InProcessWorkers
    from workers.runtime import Runtime

    require_secrets(settings)
    configure(settings.log_level, settings.log_format)
    prepare(settings)
    if settings.broker_url == "stub":
        workers = InProcessWorkers(settings, threads=threads)
        pipeline = workers.start()
    else:
        pipeline = declare(make_broker(settings.broker_url), Runtime(settings))
    # log_config=None: uvicorn's lines go through our handlers (JSON, credentials masked)
    uvicorn.run(
        create_app(settings, pipeline), host=host, port=port, log_level="info", log_config=None
    )


def run_workers(
    settings: Settings,
    processes: int,
    threads: int,
    queues: list[str] | None = None,
    *,
    nice: int = 0,
) -> int:
    """Migrate, then become `dramatiq workers.main` (exec: signals reach dramatiq itself).

    Metrics run in prometheus-client's multi-process mode: the directory is set (and
    emptied of a previous run's files) before any worker process exists.
    """
    require_secrets(settings)
    if settings.broker_url == "stub":
        print(
            "the stub broker lives inside `meetsync serve`; set MEETSYNC_BROKER_URL to "
            "redis://… or amqp://… to run separate workers",
            file=sys.stderr,
        )
        return 2
    configure(settings.log_level, settings.log_format)
    prepare(settings)
    env = dict(os.environ)
    metrics_dir = Path(
        env.setdefault("dramatiq_prom_db", str(Path(tempfile.gettempdir()) / "dramatiq-prometheus"))
    )
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    # every worker thread may hold a session at once, and so may the broker's own threads
    env.setdefault(POOL_SIZE_ENV, str(threads + POOL_SPARE))
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):
        stale.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "dramatiq", "workers.main", "--skip-logging"]
    argv += ["--processes", str(processes), "--threads", str(threads)]
    if queues:
        argv += ["--queues", *queues]
    if nice:
        os.nice(nice)  # inherited by every worker process: live work on the host goes first
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)
