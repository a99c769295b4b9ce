"""Webhook deliveries are stored by one writer thread per app, many to a transaction.

Where the webhook's tail came from (bench.webhook, py-spy): each delivery took a thread of
anyio's pool, a session, a pooled connection, a transaction and a commit of its own, and
a loop wake-up to come back; the whole request cost ~2.5 ms of CPU against ~0.2 ms for a
bare endpoint. At 200 req/s on a machine shared with other work the process could not get
that much CPU, so requests queued behind each other: seconds, not milliseconds.

Now the handler verifies and parses on the event loop, then hands the delivery to the
`DeliveryWriter` and awaits its answer. The writer takes every delivery that arrived while
it wrote the last batch (group commit, no waiting when idle) and writes them in one
transaction, each in a savepoint of its own, in arrival order: a duplicate sees the
deliveries before it, in the same batch or an earlier one, so each learns exactly what it
would have learnt alone. A refusal (`Refused`) or a conflict with another process rolls
back that delivery's savepoint only; a conflict is tried once more (the other process's
row is then visible: its answer is the replay's). Answers go out only once the batch has
committed; if the commit fails, every delivery of the batch gets `Unstored` (nothing
acknowledged that is not stored). The follow-ups (enqueueing extraction) run after the
answers, off the request's path: a lost one is the sweeper's (meetings left `received`).
The queue is bounded: past `max_pending` a delivery gets `Overloaded` at once (503 with
Retry-After), not an unbounded wait. On SQLite the writer's commits leave the log's
checkpoints to a thread of their own (`meetsync.db.session.writer_session_factory`): a
checkpoint inside a commit stalled that batch, and all that queued behind it, 6-35 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from meetsync.db.session import checkpoint, writer_session_factory

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_BATCH = 200
MAX_PENDING = 2000
CHECKPOINT_EVERY_S = 0.5  # SQLite: the log's checkpoints, off the writer's commits


@dataclass(frozen=True)
class Written(Generic[T]):
    """A delivery's answer, and what to do once it is committed and answered (enqueue)."""

    answer: T
    then: Callable[[], None] | None = None


class Refused(Exception):
    """The delivery is answered with `answer` and leaves nothing stored."""

    def __init__(self, answer: Any) -> None:
        super().__init__("refused")
        self.answer = answer


class Overloaded(Exception):
    """The writer's queue is full: retry after a moment."""


class Unstored(Exception):
    """The batch holding this delivery did not commit: nothing of it is stored."""


StoreOne = Callable[[Session, Any], Written[Any]]
StoreMany = Callable[[Session, list[Any]], list[Written[Any] | None]]
Prepare = Callable[[Session], None]


@dataclass
class _Job:
    item: Any
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    # the request's context (its correlation id): the work and its follow-up run in it
    context: contextvars.Context
    outcome: tuple[bool, Any] = field(default=(False, None))


_STOP = object()


class DeliveryWriter:
    """One writer thread for one database; `await writer.write(item)` from the event loop.

    `store_one(session, item)` stores an item alone (in a savepoint; `Refused` rolls it
    back); `store_many(session, items)` may store many at once and leaves None for those
    `store_one` should take, after it, in order; `prepare(session)` runs first in each batch.
    """

    def __init__(
        self,
        database_url: str,
        *,
        store_one: StoreOne,
        store_many: StoreMany | None = None,
        prepare: Prepare | None = None,
        max_batch: int = MAX_BATCH,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.database_url = database_url
        self.store_one, self.store_many = store_one, store_many
        self.prepare = prepare  # once per batch, first (it must write: SQLite's BEGIN)
        self.max_batch = max_batch
        self._jobs: queue.Queue[_Job | object] = queue.Queue(maxsize=max_pending)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Condition()
        self._unfinished = 0

    async def write(self, item: Any) -> Any:
        """Store `item` in the next batch's transaction; its answer once committed.

        Raises Overloaded when the queue is full, Unstored when the batch did not commit,
        and whatever storing it raised but `Refused`."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._start()
        with self._idle:
            self._unfinished += 1
        try:
            self._jobs.put_nowait(_Job(item, future, loop, contextvars.copy_context()))
        except queue.Full:
            self._done(1)
            raise Overloaded from None
        return await future

    @property
    def waiting(self) -> int:
        """Deliveries handed over and not yet taken into a batch."""
        return self._jobs.qsize()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every delivery handed over is written, answered and followed up."""
        with self._idle:
            return self._idle.wait_for(lambda: self._unfinished == 0, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Finish what was handed over, then stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(_STOP)
            thread.join(timeout)

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="meetsync-delivery-writer", daemon=True
                )
                self._thread.start()
                if self.database_url.startswith("sqlite"):
                    threading.Thread(
                        target=self._checkpoints,
                        args=(self._thread,),
                        name="meetsync-delivery-checkpoints",
                        daemon=True,
                    ).start()

    def _checkpoints(self, writer: threading.Thread) -> None:
        """SQLite: checkpoint the log while `writer` runs (its commits don't), and once
        after it stopped (meetsync.db.session.writer_session_factory)."""
        while writer.is_alive():
            writer.join(CHECKPOINT_EVERY_S)
            try:
                checkpoint(self.database_url)
            except Exception:  # busy, or a test's file is gone: the next one will do
                log.debug("checkpoint skipped", exc_info=True)

    def _done(self, count: int) -> None:
        with self._idle:
            self._unfinished -= count
            if self._unfinished == 0:
                self._idle.notify_all()

    def _run(self) -> None:
        while True:
            first = self._jobs.get()
            if first is _STOP:
                return
            batch: list[_Job] = [first]  # type: ignore[list-item]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is _STOP:
                    stop = True
                    break
                batch.append(job)  # type: ignore[arg-type]
            try:
                self._write(batch)
            except Exception:  # never let the thread die: the next batch must be served
                log.exception("delivery writer: a batch failed unexpectedly")
            finally:
                self._done(len(batch))
            if stop:
                return

    def _write(self, batch: list[_Job]) -> None:
        written: list[Written[Any] | None] = [None] * len(batch)
        session = writer_session_factory(self.database_url)()
        try:
            if self.prepare is not None:
                self.prepare(session)
            if self.store_many is not None:
                written = self._many(session, batch)
            for i, job in enumerate(batch):
                if written[i] is not None:
                    continue
                try:
                    written[i] = self._one(session, job)
                except Refused as refused:
                    job.outcome = (True, refused.answer)
                except Exception as exc:
                    job.outcome = (False, exc)
            session.commit()
        except Exception as exc:
            session.rollback()
            log.warning(
                "delivery batch not stored: %s",
                type(exc).__name__,
                extra={"event": "webhook_batch_failed", "deliveries": len(batch)},
            )
            self._settle(batch, [(False, Unstored(str(exc)))] * len(batch))
            return
        finally:
            session.close()
        outcomes = [
            job.outcome if done is None else (True, done.answer)
            for job, done in zip(batch, written, strict=True)
        ]
        self._settle(batch, outcomes)
        for job, done in zip(batch, written, strict=True):
            if done is not None and done.then is not None:
                try:
                    job.context.run(done.then)
                except Exception:
                    # stored and answered: the sweeper enqueues it again (meetings `received`)
                    log.exception("delivery follow-up failed; the sweeper will retry it")

    def _many(self, session: Session, batch: list[_Job]) -> list[Written[Any] | None]:
        """The batch at once, as far as `store_many` goes (nothing of it if it fails)."""
        assert self.store_many is not None
        try:
            with session.begin_nested():
                return self.store_many(session, [job.item for job in batch])
        except Exception:
            log.exception("delivery writer: storing a batch at once failed; one by one")
            return [None] * len(batch)

    def _one(self, session: Session, job: _Job) -> Written[Any]:
        """One delivery in its savepoint; a conflict with another writer is tried once more."""
        for attempt in (1, 2):
            try:
                with session.begin_nested():
                    return job.context.run(self.store_one, session, job.item)
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _settle(self, batch: list[_Job], outcomes: list[tuple[bool, Any]]) -> None:
        """Hand every answer to its loop: one wake-up per loop and batch."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]]
        by_loop = {}
        for job, (ok, value) in zip(batch, outcomes, strict=True):
            by_loop.setdefault(job.loop, []).append((job.future, ok, value))
        for loop, settled in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_resolve, settled)


def _resolve(settled: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in settled:
        if future.done():  # the client went away meanwhile
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
