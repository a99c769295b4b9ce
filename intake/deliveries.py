"""Webhook deliveries are written by one thread per process, many to a transaction.

Each delivery used to take a thread of the pool and a transaction of its own: at 200 req/s
the threads collided on SQLite's single write lock and backed off in its busy handler
(sleeps of up to 100 ms), churned the connection pool's overflow, and paid a thread
hand-off each, which a loaded machine stretches. That was the webhook's p99 tail.

Now the handler hands its work to the `DeliveryWriter` and awaits the answer (the API
also shortens the GIL's switch interval, `intake.app.lifespan`: every database call of the
writer releases the GIL and must win it back from a busy event loop). The writer
takes every delivery that arrived while it wrote the last batch and writes them in one
transaction: one commit and one thread hand-off per batch, not per delivery (group
commit). The answers go out only after the commit, then their follow-ups (enqueueing the
extraction) run, in order. If the batch fails as a whole (a concurrent delivery from
another process, an unknown org: any error), it is rolled back and each delivery is
written again alone, so each gets exactly the answer it would have had on its own.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

from meetsync.db.session import session_scope

T = TypeVar("T")
MAX_BATCH = 100
IDLE_S = 30.0


@dataclass(frozen=True)
class Written(Generic[T]):
    """A delivery's answer, and what to do once it is committed (enqueue, say)."""

    answer: T
    then: Callable[[], None] | None = None


Work = Callable[[Session], Written[Any]]


@dataclass
class _Job:
    work: Work
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    # the request's context (its correlation id): the work and its follow-up run in it
    context: contextvars.Context

    def run(self, session: Session) -> Written[Any]:
        return self.context.run(self.work, session)


class DeliveryWriter:
    """One writer thread for one database; `await writer.write(work)` from the event loop."""

    def __init__(self, database_url: str, max_batch: int = MAX_BATCH) -> None:
        self.database_url = database_url
        self.max_batch = max_batch
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def write(self, work: Work) -> Any:
        """Run `work` in the next batch's transaction; its answer once committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._jobs.put(_Job(work, future, loop, contextvars.copy_context()))
        self._start()  # after the put: a thread about to retire sees the job and stays
        return await future

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="meetsync-delivery-writer", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                first = self._jobs.get(timeout=IDLE_S)
            except queue.Empty:
                with self._lock:
                    if self._jobs.empty():  # idle: retire; the next write starts another
                        self._thread = None
                        return
                continue
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            self._write(batch)

    def _write(self, batch: list[_Job]) -> None:
        try:
            with session_scope(self.database_url) as session:
                written = [job.run(session) for job in batch]
        except Exception:
            # one delivery spoiled the transaction: each alone, with its own answer
            for job in batch:
                self._write_alone(job)
            return
        for job, done in zip(batch, written, strict=True):
            self._settle(job, done)

    def _write_alone(self, job: _Job) -> None:
        try:
            with session_scope(self.database_url) as session:
                done = job.run(session)
        except Exception as exc:
            job.loop.call_soon_threadsafe(_fail, job.future, exc)
            return
        self._settle(job, done)

    def _settle(self, job: _Job, done: Written[Any]) -> None:
        if done.then is not None:
            try:
                job.context.run(done.then)
            except Exception as exc:
                job.loop.call_soon_threadsafe(_fail, job.future, exc)
                return
        job.loop.call_soon_threadsafe(_succeed, job.future, done.answer)


def _succeed(future: asyncio.Future[Any], answer: Any) -> None:
    if not future.done():  # the client may have gone away meanwhile
        future.set_result(answer)


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def writer_for(state: Any, database_url: str) -> DeliveryWriter:
    """The app's writer (one per app and database), made on first use."""
    writer: DeliveryWriter | None = getattr(state, "delivery_writer", None)
    if writer is None or writer.database_url != database_url:
        writer = DeliveryWriter(database_url)
        state.delivery_writer = writer
    return writer
