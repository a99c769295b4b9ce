"""A database, Redis or RabbitMQ that is missing or down, said in one line.

Each line names what is unreachable, the setting that points at it, and how to check it,
instead of the driver's traceback. `explain` returns None for anything else, which the
caller lets through as it was.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

from meetsync.masking import mask_text
from meetsync.settings import Settings

# "Error 111 connecting to 127.0.0.1:6379. Connection refused."
_REDIS_PEER = re.compile(r"connecting to ([^\s:]+):(\d+)")
_NO_DATABASE = re.compile(r'database "([^"]+)" does not exist')
_NO_TABLE = re.compile(r'no such table: (\w+)|relation "(\w+)" does not exist')


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def not_configured(settings: Settings) -> str | None:
    """The line for a production setup without a database (never an implicit SQLite file)."""
    if settings.database_url:
        return None
    return (
        "error: MEETSYNC_DATABASE_URL is not set (no .env in this directory?): "
        "run `meetsync init`, or export MEETSYNC_DATABASE_URL=postgresql+psycopg://…; "
        "MEETSYNC_MODE=demo uses ./meetsync.db"
    )


def unreadable_settings(exc: BaseException) -> str | None:
    """One line for settings that cannot be read (a malformed MEETSYNC_* value)."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        name = "MEETSYNC_" + "__".join(str(p) for p in first["loc"]).upper()
        return f"error: {name}: {first['msg']} (in the environment or .env)"
    if isinstance(exc, SettingsError):
        field = re.search(r'field "(\w+)"', str(exc))
        name = f"MEETSYNC_{field.group(1).upper()}" if field else "a MEETSYNC_* setting"
        return f"error: {name} cannot be read (JSON expected, e.g. '[\"…\"]'): {exc}"
    return None


def explain(exc: BaseException, settings: Settings) -> str | None:
    """One line for an unreachable or missing piece of infrastructure; None otherwise."""
    for link in _chain(exc):
        kind = f"{type(link).__module__}.{type(link).__name__}"
        text = str(link)
        if kind.startswith(("sqlalchemy.exc.", "psycopg", "sqlite3")):
            line = _database(text, settings)
            if line:
                return line
        if kind.startswith("redis.exceptions.") and "Connection" in type(link).__name__:
            return _redis(text, settings)
        if kind.startswith(("pika.exceptions.", "dramatiq.brokers.rabbitmq")) or (
            kind.startswith("dramatiq.errors.") and "Connection" in type(link).__name__
        ):
            return _broker(settings)
    return None


def _database(text: str, settings: Settings) -> str | None:
    url = settings.database_url
    if not url:
        return not_configured(settings)
    shown = f"MEETSYNC_DATABASE_URL={mask_text(url)}"
    if url.startswith("sqlite"):
        table = _NO_TABLE.search(text)
        if table:
            return (
                f"error: the database has no table {table.group(1) or table.group(2)!r} "
                f"({shown}): run `meetsync db upgrade`"
            )
        if "unable to open database" in text:
            return f"error: cannot open the SQLite file ({shown}): check that its folder exists"
        return None
    host, port = _host_port(url, 5432)
    missing = _NO_DATABASE.search(text)
    if missing:
        name = missing.group(1)
        return (
            f"error: PostgreSQL at {host}:{port} has no database {name!r} ({shown}): "
            f"create it with `meetsync init` or `createdb -h {host} -p {port} {name}`"
        )
    table = _NO_TABLE.search(text)
    if table:
        return (
            f"error: the database has no table {table.group(1) or table.group(2)!r} "
            f"({shown}): run `meetsync db upgrade`"
        )
    if any(
        s in text
        for s in ("Connection refused", "could not connect", "timeout", "No route", "resolve")
    ):
        return (
            f"error: PostgreSQL at {host}:{port} is unreachable ({shown}): "
            f"check with `pg_isready -h {host} -p {port}`"
        )
    if "authentication failed" in text or "password" in text:
        return (
            f"error: PostgreSQL at {host}:{port} refused the login ({shown}): "
            "check the user and password in the URL"
        )
    return None


def _redis(text: str, settings: Settings) -> str:
    peer = _REDIS_PEER.search(text)
    named = [
        (name, url)
        for name, url in (
            ("MEETSYNC_REDIS_URL", settings.redis_url),
            ("MEETSYNC_BROKER_URL", settings.broker_url),
        )
        if url.startswith(("redis://", "rediss://"))
    ]
    if peer:
        at = (peer.group(1), int(peer.group(2)))
        matching = [(n, u) for n, u in named if _host_port(u, 6379) == at]
        named = matching or named
        host, port = at
    else:
        host, port = _host_port(named[0][1] if named else settings.redis_url, 6379)
    settings_named = " and ".join(f"{n}={mask_text(u)}" for n, u in named) or "MEETSYNC_REDIS_URL"
    return (
        f"error: Redis at {host}:{port} is unreachable ({settings_named}): "
        f"check with `redis-cli -h {host} -p {port} ping`"
    )


def _broker(settings: Settings) -> str:
    host, port = _host_port(settings.broker_url, 5672)
    return (
        f"error: RabbitMQ at {host}:{port} is unreachable "
        f"(MEETSYNC_BROKER_URL={mask_text(settings.broker_url)}): "
        "check with `rabbitmq-diagnostics -q ping` on that host"
    )


def check_services(settings: Settings) -> None:
    """Reach the broker and the throttle store before serving: their errors, explained by
    `explain`, come now rather than at the first meeting (or in a worker's endless retries)."""
    redis_urls = []
    if settings.broker_url.startswith(("redis://", "rediss://")):
        redis_urls.append(settings.broker_url.split("?", 1)[0])
    backend = settings.throttle.backend
    if backend == "redis" or (backend == "auto" and settings.broker_url != "stub"):
        redis_urls.append(settings.redis_url)
    if redis_urls:
        import redis

        for url in dict.fromkeys(redis_urls):
            client = redis.Redis.from_url(url, socket_connect_timeout=5)
            try:
                client.ping()
            finally:
                client.close()
    if settings.broker_url.startswith("amqp"):
        import pika

        params = pika.URLParameters(settings.broker_url)
        params.connection_attempts, params.socket_timeout = 1, 5
        # pika logs each failed step at ERROR; the caller says it in one line instead
        quiet = logging.getLogger("pika")
        level, quiet.level = quiet.level, logging.CRITICAL
        try:
            pika.BlockingConnection(params).close()
        finally:
            quiet.setLevel(level)
