"""The sweeper: work the database says is unfinished, and whose reminder is lost, goes back.

The database is the source of truth; the broker only carries reminders. A reminder can
be lost (a Redis restart without persistence, a worker killed between commit and
enqueue), so every worker process sweeps now and then: meetings left `received`,
`extracting` or `extracted`, and ops left `planned` or in doubt with no live lease, all
untouched for `stuck_after_s`, are enqueued again — unless their stage's queues hold a
backlog (more than `BACKLOG` messages: then the work is most likely merely queued, and
re-enqueuing it would only add repeats), in which case they wait `LOST_FACTOR` times
longer; an op whose holder died (its lease ran out) is rescued at once either way.

Each candidate is claimed with one conditional UPDATE of its `updated_at`, so several
sweepers never enqueue it twice. Enqueuing twice would still be safe: stages are
idempotent and pushes claim their op.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import dramatiq
from sqlalchemy import or_, select, update

from meetsync.db.models import Meeting, OpRecord, utcnow
from meetsync.models import as_utc
from meetsync.states import OpState
from workers.backlog import queued
from workers.lanes import Lane
from workers.ledger import IN_DOUBT

if TYPE_CHECKING:
    from workers.actors import Pipeline

log = logging.getLogger(__name__)

UNEXTRACTED = ("received", "extracting")
BATCH = 500
LOST_FACTOR = 3  # queued this many times `stuck_after_s` is lost, whatever the queues say
BACKLOG = 100  # messages of a stage beyond what workers take in one go: work is queued


@dataclass(frozen=True)
class Swept:
    """What one sweep enqueued again."""

    extract: int = 0
    plan: int = 0
    push: int = 0

    @property
    def total(self) -> int:
        return self.extract + self.plan + self.push


def sweep(pipeline: Pipeline, stuck_after_s: float | None = None) -> Swept:
    """Enqueue every meeting and op stuck in a non-final state; how many of each."""
    runtime = pipeline.runtime
    stuck_after = runtime.settings.retry.stuck_after_s if stuck_after_s is None else stuck_after_s
    cutoff = utcnow() - timedelta(seconds=stuck_after)
    lost = utcnow() - timedelta(seconds=stuck_after * LOST_FACTOR)
    backlog = _Backlog(pipeline)
    extract = plan = 0
    with runtime.session() as session:
        meetings = session.execute(
            select(Meeting.id, Meeting.status, Meeting.source, Meeting.org_id, Meeting.updated_at)
            .where(Meeting.status.in_((*UNEXTRACTED, "extracted")), Meeting.updated_at < cutoff)
            .limit(BATCH)
        ).all()
    for meeting_id, status, source, org_id, updated_at in meetings:
        stage = "extract" if status in UNEXTRACTED else "plan"
        if not _before(updated_at, lost) and backlog.of(stage) > BACKLOG:
            continue  # merely queued: its reminder is still in the broker
        if not _touch(pipeline, Meeting, Meeting.id == meeting_id, Meeting.updated_at < cutoff):
            continue
        if stage == "extract":
            pipeline.enqueue_extract(meeting_id, backfill=source == "backfill", org=org_id)
            extract += 1
        else:
            pipeline.plan.on(Lane.of(source == "backfill")).send(meeting_id)
            plan += 1
    now = time.time()
    with runtime.session() as session:
        ops = session.execute(
            select(OpRecord.key, OpRecord.connector, OpRecord.lease_until, OpRecord.updated_at)
            .where(
                OpRecord.updated_at < cutoff,
                or_(
                    OpRecord.state == OpState.PLANNED,
                    (OpRecord.state == IN_DOUBT)
                    & or_(OpRecord.lease_until.is_(None), OpRecord.lease_until < now),
                    (OpRecord.state == OpState.DONE)
                    & (OpRecord.applied_hash != OpRecord.payload_hash),
                ),
            )
            .limit(BATCH)
        ).all()
    touched = [
        key
        for key, connector, lease_until, updated_at in ops
        # a lease that ran out means a worker died holding the op: lost, whatever is queued
        if (
            bool(lease_until)
            or _before(updated_at, lost)
            or backlog.of(f"push_{connector}") <= BACKLOG
        )
        and _touch(pipeline, OpRecord, OpRecord.key == key, OpRecord.updated_at < cutoff)
    ]
    push = pipeline.enqueue_ops(touched)
    swept = Swept(extract, plan, push)
    if swept.total:
        log.info("sweeper re-enqueued %d extract, %d plan, %d push", extract, plan, push)
    return swept


def _before(stamp: datetime, moment: datetime) -> bool:
    """`stamp` (naive UTC from SQLite, aware from PostgreSQL) is earlier than `moment`."""
    return as_utc(stamp) < moment


class _Backlog:
    """Messages the broker still holds per stage (every lane, delayed ones included)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.counts: dict[str, int] = {}

    def of(self, stage: str) -> int:
        if stage not in self.counts:
            self.counts[stage] = sum(
                queued(self.pipeline.broker, name) or 0 for name in self._queues(stage)
            )
        return self.counts[stage]

    def _queues(self, stage: str) -> list[str]:
        lanes = {"extract": self.pipeline.extract, "plan": self.pipeline.plan}.get(stage)
        lanes = lanes or self.pipeline.push.get(stage.removeprefix("push_"))
        if lanes is None:
            return []
        return [lanes.on(lane).queue_name for lane in Lane]


def _touch(pipeline: Pipeline, table: Any, *where: Any) -> bool:
    """Claim one stuck row for this sweeper: True when our UPDATE was the one that hit it."""
    with pipeline.runtime.session() as session:
        hit = session.execute(
            update(table)
            .where(*where)
            .values(updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return bool(hit.rowcount == 1)  # type: ignore[attr-defined]


class Sweeper(dramatiq.Middleware):
    """Runs `sweep` every `sweep_every_s` (jittered) in a thread of each worker process."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.every = pipeline.runtime.settings.retry.sweep_every_s
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if self.every <= 0 or self.thread is not None:
            return
        self.stop.clear()
        self.thread = threading.Thread(target=self._run, name="meetsync-sweeper", daemon=True)
        self.thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=10)
            self.thread = None

    def _run(self) -> None:
        # jitter spreads the sweeps of many processes; a failed sweep (the database or the
        # broker restarting) is simply tried again next time
        while not self.stop.wait(self.every * random.uniform(0.5, 1.5)):
            try:
                sweep(self.pipeline)
            except Exception as exc:
                log.warning("sweep failed: %s: %s", type(exc).__name__, exc)
