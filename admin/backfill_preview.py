"""Backfill dry run: extract (within the budget) and preview every write, writing nothing.

Each good record is extracted (or its stored insights reused when the transcript is
unchanged) and planned through the org's latest mapping by `admin.preview`, the
same code as `meetsync mappings preview`: per op, the provider's current value of each
field next to the new one. No meeting, cursor, ledger row or provider record is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from admin.backfill import (
    Outcome,
    RecordCheck,
    Summary,
    estimate_usd,
    has_cached_insights,
    run_key,
    usage_usd,
)
from admin.errors import Invalid, NotFound
from admin.meeting_store import find_stored, transcript_hash
from admin.preview import build_preview, load_mapping_for, stored_insights
from admin.sources import Source, Window
from extraction.errors import ExtractionError
from extraction.schemas import Insights
from meetsync.db.models import Org
from meetsync.db.session import session_factory
from meetsync.models import MeetingOutput
from meetsync.settings import Settings
from meetsync.transcripts import TranscriptFetchFailed, TranscriptUnavailable, with_transcript


@dataclass(frozen=True)
class Change:
    """One field of one planned write: what the provider holds and what it would get."""

    ref: str
    meeting_id: str
    destination: str  # "<connector>/<connection>"
    action: str
    target: str
    ledger: str  # new | changed | unchanged (what meetsync already wrote)
    field: str
    current: Any
    new: Any
    changes: bool | None  # None when the provider's current value is unknown


@dataclass
class DryRun:
    settings: Settings
    source: Source
    window: Window
    providers: list[str] | None = None
    budget_usd: float | None = None
    changes: list[Change] = field(default_factory=list)

    def run(self, on_outcome: Callable[[Outcome], None] = lambda _: None) -> Summary:
        """Go through the whole source; stop early only at the budget."""
        summary = Summary(run_key(self.window, self.source, self.providers), None)
        check = RecordCheck(self.window)
        session = session_factory(self.settings.database_url)()
        try:
            if session.get(Org, self.window.org_id) is None:
                raise LookupError(f"no org {self.window.org_id!r}")
            for record in self.source.records(self.window, None):
                outcome = check(record)
                if outcome is None:
                    assert record.meeting is not None
                    outcome = self._preview(session, record.ref, record.meeting, summary)
                if outcome.kind == "over_budget":
                    summary.state = "budget_reached"
                    summary.outcomes.append(outcome)
                    on_outcome(outcome)
                    return summary
                summary.add(outcome)
                on_outcome(outcome)
        finally:
            session.rollback()  # a preview writes nothing, whatever it touched
            session.close()
        summary.state = "done"
        return summary

    def _preview(
        self, session: Session, ref: str, meeting: MeetingOutput, summary: Summary
    ) -> Outcome:
        row = find_stored(session, meeting.org_id, meeting.meeting_id)
        same = row is not None and row.transcript_hash == transcript_hash(meeting)
        cost = 0.0
        record = stored_insights(session, self.settings, row) if row is not None and same else None
        if record is not None and has_cached_insights(session, self.settings, row):
            insights, origin = Insights.model_validate(record.insights), "stored insights"
        else:
            estimate = estimate_usd(self.settings, meeting)
            if self.budget_usd is not None and summary.spent_usd + estimate > self.budget_usd:
                return Outcome(ref, "over_budget", reason=f"would pass ${self.budget_usd:.2f}")
            try:
                insights, cost = self._extract(session, meeting)
            except (ExtractionError, TranscriptUnavailable, TranscriptFetchFailed) as exc:
                return Outcome(ref, "failed", reason=f"{type(exc).__name__}: {exc}")
            origin = "extraction"
        try:
            mapping, version = load_mapping_for(session, meeting.org_id)
            preview = build_preview(
                session,
                self.settings,
                meeting,
                insights,
                mapping,
                version,
                row.id if row is not None else None,
                origin,
                providers=self.providers,
            )
        except (Invalid, NotFound) as exc:
            return Outcome(ref, "failed", reason=str(exc), cost_usd=cost)
        changed = 0
        for op in preview.ops:
            target = op.target.get("object") or op.target.get("project") or op.target.get("channel")
            for item in op.fields:
                would_change = op.ledger != "unchanged" and item.changes is not False
                changed += would_change
                self.changes.append(
                    Change(
                        ref=ref,
                        meeting_id=meeting.meeting_id,
                        destination=f"{op.connector}/{op.connection}",
                        action=op.action,
                        target=str(target or ""),
                        ledger=op.ledger,
                        field=item.name,
                        current=item.current,
                        new=item.new,
                        changes=item.changes if op.ledger != "unchanged" else False,
                    )
                )
        return Outcome(
            ref,
            "previewed",
            row.id if row is not None else None,
            reason=f"{changed} field(s) would change" if changed else "no change",
            cost_usd=cost,
        )

    def _extract(self, session: Session, meeting: MeetingOutput) -> tuple[Insights, float]:
        from extraction.extract import extract_insights

        org = session.get(Org, meeting.org_id)
        full = with_transcript(meeting, self.settings.transcript_fetch)
        result = extract_insights(
            full, settings=self.settings.llm, org_profile=dict(org.profile) if org else {}
        )
        spent = usage_usd(self.settings, [u.model_dump() for u in result.usage])
        return result.insights, spent
