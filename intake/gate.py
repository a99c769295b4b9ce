"""How many webhook writes run at once: the rest wait their turn on the event loop.

Without a gate every delivery takes a thread of the pool (40) and then a database
connection: on SQLite the writers collide on its single write lock and back off inside
SQLite's busy handler in sleeps of up to 100 ms, and the connection pool churns through
overflow connections (each new one paying its PRAGMAs); on PostgreSQL the threads queue
for the pool's connections. Those waits were the webhook's p99 tail (bench.webhook: 220 ms
at 200 req/s against 3.9 ms at p50). Queued here, in order, a delivery waits only for the
writes ahead of it: one at a time on SQLite, the pool's size on PostgreSQL.
"""

from __future__ import annotations

import asyncio

from starlette.datastructures import State

from meetsync.db.session import write_concurrency


def writer_gate(state: State, database_url: str) -> asyncio.Semaphore:
    """The app's semaphore for webhook writes (made on first use, in the serving loop)."""
    gate: asyncio.Semaphore | None = getattr(state, "webhook_gate", None)
    if gate is None:
        gate = asyncio.Semaphore(write_concurrency(database_url))
        state.webhook_gate = gate
    return gate
