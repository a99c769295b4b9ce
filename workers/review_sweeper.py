"""The review sweeper: review work the database says is due goes back on the queue.

Review's reminders to itself ride the broker (a delayed `review_expire`, a `review_prepare`
after the plan, a `review_refresh` after a decision) and a broker can lose them. Every
worker process therefore sweeps now and then, like `workers/sweeper.py` does for the
pipeline: meetings with requests past `expires_at`, requests nobody was asked about yet and
review messages never posted, all untouched for `stuck_after_s`, are enqueued again. Each
meeting is claimed with one conditional UPDATE of its `updated_at` (a planned meeting's is
nobody else's), so several sweepers never enqueue it twice; twice would still be safe.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import dramatiq
from dramatiq import Actor
from sqlalchemy import select, update

from meetsync.db.models import Meeting, ReviewMessage, ReviewRequest, utcnow
from meetsync.states import Verdict
from workers.review_actors import ReviewActors
from workers.runtime import Runtime

log = logging.getLogger(__name__)
BATCH = 200


@dataclass(frozen=True)
class ReviewSwept:
    """What one sweep enqueued again, by meeting."""

    expire: int = 0
    prepare: int = 0
    refresh: int = 0


def sweep_reviews(
    runtime: Runtime, actors: ReviewActors, stuck_after_s: float | None = None
) -> ReviewSwept:
    """Enqueue the review work that is due and was left undone."""
    stuck_after = runtime.settings.retry.stuck_after_s if stuck_after_s is None else stuck_after_s
    now = utcnow()
    # expiry times are stored naive (UTC); the rows' own timestamps as the models write them
    naive_now = now.replace(tzinfo=None)
    cutoff = now - timedelta(seconds=stuck_after)
    with runtime.session() as session:
        overdue = session.scalars(
            select(ReviewRequest.meeting_id)
            .where(ReviewRequest.state == Verdict.PENDING, ReviewRequest.expires_at < naive_now)
            .distinct()
            .limit(BATCH)
        ).all()
        waiting = session.scalars(
            select(ReviewRequest)
            .where(ReviewRequest.state == Verdict.PENDING, ReviewRequest.created_at < cutoff)
            .limit(BATCH)
        ).all()
        unasked = sorted({r.meeting_id for r in waiting if not r.proposal.get("announced")})
        unposted = session.scalars(
            select(ReviewMessage.meeting_id)
            .where(ReviewMessage.ts.is_(None), ReviewMessage.created_at < cutoff)
            .distinct()
            .limit(BATCH)
        ).all()
    swept = ReviewSwept(
        expire=_each(runtime, overdue, cutoff, actors.expire),
        prepare=_each(runtime, unasked, cutoff, actors.prepare),
        refresh=_each(runtime, unposted, cutoff, actors.refresh),
    )
    if swept.expire or swept.prepare or swept.refresh:
        log.info("review sweeper re-enqueued %s", swept)
    return swept


def _each(
    runtime: Runtime, meeting_ids: Iterable[str], cutoff: datetime, actor: Actor[Any, Any]
) -> int:
    """Send `actor` each meeting this sweeper claims; how many."""
    sent = 0
    for meeting_id in meeting_ids:
        with runtime.session() as session:
            hit = session.execute(
                update(Meeting)
                .where(Meeting.id == meeting_id, Meeting.updated_at < cutoff)
                .values(updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
        if hit.rowcount == 1:  # type: ignore[attr-defined]
            actor.send(meeting_id)
            sent += 1
    return sent


class ReviewSweeper(dramatiq.Middleware):
    """Runs `sweep_reviews` every `sweep_every_s` (jittered) in a thread of each worker."""

    def __init__(self, runtime: Runtime, actors: ReviewActors) -> None:
        self.runtime, self.actors = runtime, actors
        self.every = runtime.settings.retry.sweep_every_s
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if self.every <= 0 or self.thread is not None:
            return
        self.stop.clear()
        self.thread = threading.Thread(
            target=self._run, name="meetsync-review-sweeper", daemon=True
        )
        self.thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=10)
            self.thread = None

    def _run(self) -> None:
        while not self.stop.wait(self.every * random.uniform(0.5, 1.5)):
            try:
                sweep_reviews(self.runtime, self.actors)
            except Exception as exc:  # the database or broker restarting: next time
                log.warning("review sweep failed: %s", type(exc).__name__)
