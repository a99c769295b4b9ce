"""`meetsync serve` and `meetsync worker`."""

from __future__ import annotations

import sys

import uvicorn

from cli.infrastructure import check_services
from meetsync.bootstrap import sync_connections
from meetsync.db.migrate import upgrade
from meetsync.db.session import session_scope
from meetsync.logging import configure
from meetsync.settings import Settings, missing_secrets


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
    configure(settings.log_level)
    prepare(settings)
    if settings.broker_url == "stub":
        workers = InProcessWorkers(settings, threads=threads)
        pipeline = workers.start()
    else:
        pipeline = declare(make_broker(settings.broker_url), Runtime(settings))
    # log_config=None: uvicorn's records go through our handlers, credentials masked
    app = create_app(settings, pipeline)
    uvicorn.run(app, host=host, port=port, log_level="info", log_config=None)


def run_workers(settings: Settings, processes: int, threads: int) -> int:
    require_secrets(settings)
    if settings.broker_url == "stub":
        print(
            "the stub broker lives inside `meetsync serve`; set MEETSYNC_BROKER_URL to "
            "redis://… or amqp://… to run separate workers",
            file=sys.stderr,
        )
        return 2
    from dramatiq.cli import main as dramatiq_main
    from dramatiq.cli import make_argument_parser

    prepare(settings)
    args = make_argument_parser().parse_args(
        ["workers.main", "--processes", str(processes), "--threads", str(threads)]
    )
    code: int = dramatiq_main(args)
    return code
