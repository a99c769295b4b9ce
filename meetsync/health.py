"""Readiness: can this process do its work? Database, migrations, broker, Redis.

`/readyz` (the API) and the worker's heartbeat (`workers.heartbeat`) ask the same checks;
each answers "ok" or a short reason (an exception's class, never its message: URLs in
connection errors can carry credentials).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from meetsync.db.migrate import alembic_config
from meetsync.db.session import engine_for
from meetsync.settings import Settings

OK = "ok"
TIMEOUT_S = 2.0


@cache
def migrations_head(database_url: str) -> str | None:
    """The newest migration this release ships (read once: it cannot change while running)."""
    return ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()


def database(settings: Settings) -> str:
    """Reachable, and its schema at the migrations' head."""
    head = migrations_head(settings.database_url)
    with engine_for(settings.database_url).connect() as conn:
        conn.execute(text("SELECT 1"))
        current = MigrationContext.configure(conn).get_current_revision()
    return OK if current == head else f"migrations at {current}, head is {head}"


def redis_at(url: str) -> str:
    import redis

    client = redis.Redis.from_url(
        url.split("?")[0], socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S
    )
    try:
        client.ping()
    finally:
        client.close()
    return OK


def amqp_at(url: str) -> str:
    """The RabbitMQ port answers with AMQP (a TCP connect plus the protocol handshake)."""
    import pika

    params = pika.URLParameters(url)
    params.socket_timeout = TIMEOUT_S
    params.blocked_connection_timeout = TIMEOUT_S
    params.connection_attempts = 1
    pika.BlockingConnection(params).close()
    return OK


def broker(settings: Settings) -> str:
    url = settings.broker_url
    if url == "stub":
        return OK  # in this process
    if url.startswith(("amqp://", "amqps://")):
        return amqp_at(url)
    return redis_at(url)


def redis(settings: Settings) -> str:
    """The throttle's and cache's Redis (not needed with the in-memory throttle)."""
    if settings.throttle.backend == "memory" or (
        settings.throttle.backend == "auto" and settings.broker_url == "stub"
    ):
        return OK
    return redis_at(settings.redis_url)


CHECKS: dict[str, Callable[[Settings], str]] = {
    "database": database,
    "broker": broker,
    "redis": redis,
}


def readiness(settings: Settings) -> dict[str, str]:
    """Every check's answer: "ok", or why not."""
    answers: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            answers[name] = check(settings)
        except Exception as exc:  # any failure means not ready; say which kind
            answers[name] = f"unreachable: {type(exc).__name__}"
    return answers


def ready(answers: dict[str, str]) -> bool:
    return all(v == OK for v in answers.values())
