"""Backfill: past meetings from a source go through the pipeline at backfill priority.

A real run stores each good record and enqueues its extraction (live meetings go first),
keeping to the LLM budget. Progress is a cursor row in the database, committed in the same
transaction as the record's meeting, so a killed run resumes at the next record; meetings
it stored but did not see finished are enqueued again on resume. A second run over a
completed range finds every meeting unchanged and finished, and enqueues nothing.
Bad records (malformed, another org's, repeated) are reported and skipped, never fatal.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from admin.meeting_store import as_utc_naive, find_stored, store_meeting
from admin.sources import Source, SourceRecord, Window
from extraction.cache import extraction_key
from meetsync.db.models import BackfillCursor, InsightRecord, MappingVersion, Meeting, OpRecord, Org
from meetsync.db.session import session_scope
from meetsync.models import MeetingOutput
from meetsync.settings import Settings

UNFINISHED_MEETING = ("received", "extracting", "extracted")
OPEN_OPS = ("planned", "sending")
PROMPT_TOKENS = 1_500  # instructions, schema and org profile per call, rounded up
URL_TRANSCRIPT_TOKENS = 12_000  # a transcript we have not fetched yet: assume a long one


class Enqueuer(Protocol):
    def enqueue_extract(
        self, meeting_id: str, *, backfill: bool = False, org: str | None = None
    ) -> None: ...


@dataclass(frozen=True)
class Outcome:
    """What the backfill did with one record."""

    ref: str
    kind: str  # enqueued | unchanged | stale | out_of_range | bad | over_budget | previewed
    meeting_id: str | None = None
    reason: str | None = None
    cost_usd: float = 0.0


@dataclass
class Summary:
    run_key: str
    resumed_from: str | None
    recovered: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    spent_usd: float = 0.0
    state: str = "running"
    outcomes: list[Outcome] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.counts[outcome.kind] = self.counts.get(outcome.kind, 0) + 1
        self.spent_usd += outcome.cost_usd
        if outcome.kind != "out_of_range":
            self.outcomes.append(outcome)


def run_key(window: Window, source: Source, providers: list[str] | None) -> str:
    """One cursor per org, source, range and provider set."""
    blob = json.dumps(
        [
            window.org_id,
            source.describe(),
            window.since.isoformat(),
            window.until.isoformat() if window.until else None,
            sorted(providers or []),
        ]
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def estimate_usd(settings: Settings, meeting: MeetingOutput) -> float:
    """An upper-leaning estimate of one extraction's cost (about 4 characters a token)."""
    if meeting.transcript_url is not None:
        text_tokens = URL_TRANSCRIPT_TOKENS
    else:
        text_tokens = sum(len(u.text) + len(u.speaker or "") + 12 for u in meeting.transcript) // 3
    if text_tokens == 0:
        return 0.0  # an empty transcript makes no LLM call
    total = 0.0
    for model in settings.llm.models.values():
        price_in, price_out = settings.llm.prices.get(model, (0.0, 0.0))
        tokens_out = min(settings.llm.max_output_tokens, 400 + text_tokens // 4)
        total += ((text_tokens + PROMPT_TOKENS) * price_in + tokens_out * price_out) / 1_000_000
    return total


def usage_usd(settings: Settings, usage: Iterable[dict[str, Any]]) -> float:
    """USD of stored or fresh LLM calls at the configured prices."""
    total = 0.0
    for call in usage:
        price_in, price_out = settings.llm.prices.get(str(call.get("model")), (0.0, 0.0))
        total += (
            int(call.get("input_tokens", 0)) * price_in
            + int(call.get("output_tokens", 0)) * price_out
        ) / 1_000_000
    return total


def has_cached_insights(session: Session, settings: Settings, row: Meeting | None) -> bool:
    """True when extraction of this stored revision would hit the cache (no LLM call)."""
    if row is None:
        return False
    org = session.get(Org, row.org_id)
    key = extraction_key(settings.llm, row.transcript_hash, dict(org.profile) if org else {})
    found = session.scalar(
        select(InsightRecord.id).where(
            InsightRecord.meeting_id == row.id, InsightRecord.cache_key == key
        )
    )
    return found is not None


def needs_work(session: Session, row: Meeting) -> bool:
    """A stored meeting the pipeline has not finished (or whose mapping changed since)."""
    if row.status in UNFINISHED_MEETING or row.status == "failed":
        return True
    open_ops = session.scalar(
        select(func.count())
        .select_from(OpRecord)
        .where(OpRecord.meeting_id == row.id, OpRecord.state.in_(OPEN_OPS))
    )
    if open_ops:
        return True
    planned_with = session.scalar(
        select(func.max(OpRecord.mapping_version)).where(OpRecord.meeting_id == row.id)
    )
    latest = session.scalar(
        select(func.max(MappingVersion.version)).where(MappingVersion.org_id == row.org_id)
    )
    return planned_with is not None and latest is not None and planned_with < latest


def finished_count(session: Session, key: str) -> tuple[int, int]:
    """(finished, touched) meetings of a run: the pipeline is done with `finished` of them."""
    touched = session.scalar(
        select(func.count()).select_from(Meeting).where(Meeting.backfill_run == key)
    )
    busy = session.scalar(
        select(func.count())
        .select_from(Meeting)
        .where(Meeting.backfill_run == key, Meeting.status.in_(UNFINISHED_MEETING))
    )
    pushing = session.scalar(
        select(func.count(func.distinct(OpRecord.meeting_id)))
        .join(Meeting, Meeting.id == OpRecord.meeting_id)
        .where(
            Meeting.backfill_run == key,
            Meeting.status.not_in(UNFINISHED_MEETING),
            OpRecord.state.in_(OPEN_OPS),
        )
    )
    total = int(touched or 0)
    return max(0, total - int(busy or 0) - int(pushing or 0)), total


class RecordCheck:
    """The checks every record passes before anything happens: org, range, repeats."""

    def __init__(self, window: Window, seen: set[str] | None = None) -> None:
        self.window = window
        self.seen = seen or set()

    def __call__(self, record: SourceRecord) -> Outcome | None:
        """An outcome for a record to skip, None for one to process."""
        if record.meeting is None:
            return Outcome(record.ref, "bad", reason=record.problem or "unreadable record")
        meeting = record.meeting
        if meeting.org_id != self.window.org_id:
            return Outcome(record.ref, "bad", reason=f"another org's meeting ({meeting.org_id})")
        if not self.window.covers(meeting.start):
            return Outcome(record.ref, "out_of_range")
        if meeting.meeting_id in self.seen:
            return Outcome(record.ref, "bad", reason=f"duplicate of meeting {meeting.meeting_id}")
        self.seen.add(meeting.meeting_id)
        return None


class Pacer:
    """At most `rate` records a second (None: no limit)."""

    def __init__(
        self,
        rate: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate, self.clock, self.sleep = rate, clock, sleep
        self.next_at: float | None = None

    def wait(self) -> None:
        if not self.rate:
            return
        now = self.clock()
        if self.next_at is not None and now < self.next_at:
            self.sleep(self.next_at - now)
            now = self.next_at
        self.next_at = now + 1.0 / self.rate


@dataclass
class Backfill:
    """A real run: store, enqueue at backfill priority, advance the cursor."""

    settings: Settings
    source: Source
    window: Window
    pipeline: Enqueuer
    providers: list[str] | None = None
    budget_usd: float | None = None
    max_rate: float | None = None
    restart: bool = False
    pacer: Pacer | None = None
    # ms to hold back before storing the next record (live meetings running); None: never
    hold: Callable[[], int] | None = None

    def __post_init__(self) -> None:
        self.key = run_key(self.window, self.source, self.providers)
        self.pacer = self.pacer or Pacer(self.max_rate)

    def session(self) -> Any:
        return session_scope(self.settings.database_url)

    def begin(self) -> Summary:
        """Open or resume the run's cursor; re-enqueue what a killed run left unfinished."""
        with self.session() as session:
            if session.get(Org, self.window.org_id) is None:
                raise LookupError(f"no org {self.window.org_id!r}")
            cursor = session.get(BackfillCursor, self.key)
            fresh = cursor is None or self.restart or cursor.state == "done"
            if cursor is None:
                cursor = BackfillCursor(
                    run_key=self.key,
                    org_id=self.window.org_id,
                    source=self.source.describe(),
                    since=as_utc_naive(self.window.since),
                    until=as_utc_naive(self.window.until),
                    providers=self.providers,
                )
                session.add(cursor)
            if fresh:
                cursor.position, cursor.counts, cursor.spent_usd = None, {}, 0.0
            cursor.state = "running"
            summary = Summary(self.key, None if fresh else cursor.position)
            summary.counts = {} if fresh else dict(cursor.counts or {})
            summary.spent_usd = 0.0 if fresh else float(cursor.spent_usd or 0.0)
            left: list[str] = []
            if not fresh:
                rows = session.scalars(select(Meeting).where(Meeting.backfill_run == self.key))
                left = [row.id for row in rows if needs_work(session, row)]
        for meeting_id in left:
            self.pipeline.enqueue_extract(meeting_id, backfill=True, org=self.window.org_id)
        summary.recovered = len(left)
        return summary

    def seen(self, summary: Summary) -> set[str]:
        """Meeting ids a resumed run already went through (repeats of them are duplicates)."""
        if summary.resumed_from is None:
            return set()
        with self.session() as session:
            return set(
                session.scalars(select(Meeting.external_id).where(Meeting.backfill_run == self.key))
            )

    def run(
        self, summary: Summary, on_outcome: Callable[[Outcome], None] = lambda _: None
    ) -> Summary:
        """Go through the source from the cursor; stop at the end or at the budget."""
        check = RecordCheck(self.window, self.seen(summary))
        for record in self.source.records(self.window, summary.resumed_from):
            skipped = check(record)
            if skipped is not None:
                self._advance(record, skipped, summary)
                on_outcome(skipped)
                continue
            assert record.meeting is not None and self.pacer is not None
            self.pacer.wait()
            while self.hold is not None and (held_ms := self.hold()) > 0:
                time.sleep(held_ms / 1000)  # our inserts would slow live meetings' database
            outcome = self._store(record, record.meeting, summary)
            if outcome.kind == "over_budget":
                summary.state = "budget_reached"
                self._set_state("budget_reached")
                on_outcome(outcome)
                summary.outcomes.append(outcome)
                return summary
            if outcome.kind == "enqueued" and outcome.meeting_id is not None:
                self.pipeline.enqueue_extract(
                    outcome.meeting_id, backfill=True, org=self.window.org_id
                )
            on_outcome(outcome)
        summary.state = "read"
        self._set_state("read")
        return summary

    def _store(self, record: SourceRecord, meeting: MeetingOutput, summary: Summary) -> Outcome:
        with self.session() as session:
            before = find_stored(session, meeting.org_id, meeting.meeting_id)
            before_connectors = before.connectors if before is not None else None
            cached = before is not None and has_cached_insights(session, self.settings, before)
            stored = store_meeting(
                session,
                meeting,
                "backfill",
                backfill_run=self.key,
                connectors=self.providers,
            )
            row = session.get(Meeting, stored.meeting_id)
            assert row is not None
            if stored.stale:
                outcome = Outcome(
                    record.ref, "stale", stored.meeting_id, "a newer revision is stored"
                )
            elif (
                not stored.changed
                and before_connectors == row.connectors
                and not needs_work(session, row)
            ):
                outcome = Outcome(record.ref, "unchanged", stored.meeting_id)
            else:
                cost = (
                    0.0 if (cached and not stored.changed) else estimate_usd(self.settings, meeting)
                )
                if self.budget_usd is not None and summary.spent_usd + cost > self.budget_usd:
                    session.rollback()  # nothing of this record is kept: a rerun starts here
                    return Outcome(
                        record.ref, "over_budget", reason=f"would pass ${self.budget_usd:.2f}"
                    )
                outcome = Outcome(record.ref, "enqueued", stored.meeting_id, cost_usd=cost)
            summary.add(outcome)
            self._save_cursor(session, record.position, summary)
        return outcome

    def _advance(self, record: SourceRecord, outcome: Outcome, summary: Summary) -> None:
        summary.add(outcome)
        with self.session() as session:
            self._save_cursor(session, record.position, summary)

    def _save_cursor(self, session: Session, position: str, summary: Summary) -> None:
        cursor = session.get(BackfillCursor, self.key)
        assert cursor is not None
        cursor.position, cursor.counts = position, dict(summary.counts)
        cursor.spent_usd = summary.spent_usd

    def _set_state(self, state: str) -> None:
        with self.session() as session:
            cursor = session.get(BackfillCursor, self.key)
            if cursor is not None:
                cursor.state = state

    def progress(self) -> tuple[int, int]:
        """(finished, touched) meetings of this run so far."""
        with self.session() as session:
            return finished_count(session, self.key)

    def finish(self, summary: Summary) -> Summary:
        """Mark the cursor done once the pipeline finished every meeting of the run."""
        if summary.state == "read":
            summary.state = "done"
            self._set_state("done")
        return summary


def parse_day(text: str) -> datetime:
    """A date or an ISO 8601 timestamp; a bare date or naive time is UTC."""
    from datetime import UTC

    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
