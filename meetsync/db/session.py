"""Engines and sessions; the same code runs on SQLite (embedded) and PostgreSQL.

Statements the pipeline runs for every meeting are built once per process (`@cache` on the
function that builds one) and run with bind parameters: SQLAlchemy caches compiled SQL by a
statement's cache key, but computes the key again for every new statement object, which
cost more client CPU than the round trip (a batch claim: 1,080 µs built each time, 370 µs
built once). Those that load no ORM objects (an UPDATE, a select of columns) run on
`session.connection()`, in the session's transaction: the ORM's own setup of a statement
costs ~50–120 µs of client CPU they do not need (a batch claim: 320 → 200 µs). Unlike
`session.execute`, that does not flush pending objects first; each such call site has none
that the statement reads.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from meetsync import jsoncodec

RECYCLE_S = 1800  # a pooled connection older than this is replaced, not pinged
POOL_SIZE, MAX_OVERFLOW = 5, 10  # SQLAlchemy's QueuePool defaults, named
# connections kept open per engine; `meetsync worker` sets it to its threads and a few: a
# pool smaller than the threads that use it at once opens and closes a connection (a
# PostgreSQL backend started and torn down) for every checkout beyond it
POOL_SIZE_ENV = "MEETSYNC_DB_POOL_SIZE"
# JSON columns through orjson (meetsync/jsoncodec.py): on PostgreSQL psycopg parses them
JSON_CODEC: dict[str, Any] = {
    "json_serializer": jsoncodec.dumps,
    "json_deserializer": jsoncodec.loads,
}


@cache
def engine_for(url: str) -> Engine:
    """One engine per database URL per process.

    No ping per checkout (a round trip for every session): connections are recycled after
    `RECYCLE_S`, and one that a database restart broke is noticed on first use, which
    invalidates the whole pool at once (the caller's retry then gets a fresh connection).
    """
    kwargs: dict[str, Any] = dict(JSON_CODEC)
    if url.startswith("sqlite"):
        # a file on this machine: nothing to ping (the ping cost a query per checkout)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        pool_size = int(os.environ.get(POOL_SIZE_ENV) or POOL_SIZE)
        kwargs.update(pool_recycle=RECYCLE_S, pool_size=pool_size, max_overflow=MAX_OVERFLOW)
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
    _engines.append(engine)
    return engine


_engines: list[Engine] = []


def _forget_parent_connections() -> None:
    """In a forked child (dramatiq's worker processes), never reuse the parent's sockets:
    two processes talking over one connection corrupt it (`DuplicatePreparedStatement`)."""
    for engine in _engines:
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_parent_connections)


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    # WAL lets the API read while a worker thread writes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # in WAL mode NORMAL is crash-safe (a killed process loses nothing committed); it skips
    # an fsync per commit, which cost ~5 ms per webhook on an ordinary disk
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@cache
def session_factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(engine_for(url), expire_on_commit=False)


@cache
def writer_session_factory(url: str) -> sessionmaker[Session]:
    """Sessions for a process's one busy writer thread (the webhook's deliveries).

    On SQLite its connection never checkpoints the write-ahead log in a commit: SQLite's
    automatic checkpoint (every 1,000 pages) copies and fsyncs inside whichever commit
    crosses the mark, 6-35 ms on a loaded disk against ~0.15 ms for a commit, and every
    delivery waiting for that batch waits with it. `checkpoint` does it instead, from a
    thread of its own. Elsewhere: the ordinary sessions.
    """
    if not url.startswith("sqlite"):
        return session_factory(url)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        **JSON_CODEC,
    )
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "connect", _no_autocheckpoint)
    _engines.append(engine)
    return sessionmaker(engine, expire_on_commit=False)


def _no_autocheckpoint(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def checkpoint(url: str) -> None:
    """On SQLite, copy what the write-ahead log holds into the database now, waiting for
    no reader or writer (PASSIVE); nothing elsewhere."""
    if url.startswith("sqlite"):
        with engine_for(url).connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
