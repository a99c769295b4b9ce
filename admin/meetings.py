"""An org's meetings as the console shows them: a searchable list and each one's timeline.

The timeline reads what is stored: the meeting (received), its newest extraction (extracted,
with the evidence quote behind each value), and its ops in the ledger (planned, then sent,
done or failed, with the provider's link or its words), each held op with what its review
decided (who, when, approved, edited, skipped or expired).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from admin.errors import NotFound
from meetsync.db.models import InsightRecord, Meeting, OpRecord, ReviewRequest
from meetsync.masking import mask_text
from meetsync.models import UtcDatetime
from meetsync.states import MeetingStatus

MAX_LISTED = 200


class MeetingRow(BaseModel):
    id: str
    external_id: str
    title: str
    status: str
    source: str
    received_at: UtcDatetime
    ops: dict[str, int]


class Fact(BaseModel):
    """One extracted value and the quote from the transcript it stands on."""

    name: str
    value: Any
    evidence: str | None


class Decision(BaseModel):
    """What a review made of an op: pending, or who decided what and when."""

    state: str
    decided_by: str | None
    decided_at: UtcDatetime | None
    expires_at: UtcDatetime | None
    corrections: list[dict[str, Any]]


class OpLine(BaseModel):
    key: str
    connector: str
    connection: str
    action: str
    destination: str | None
    title: str | None
    evidence: str | None
    state: str
    attempts: int
    url: str | None
    error: str | None
    planned_at: UtcDatetime
    updated_at: UtcDatetime
    review: Decision | None = None


class Timeline(BaseModel):
    meeting: MeetingRow
    error: str | None
    revision: int
    extracted_at: UtcDatetime | None
    facts: list[Fact]
    ops: list[OpLine]


def list_meetings(
    session: Session, org_id: str, search: str | None = None, limit: int = MAX_LISTED
) -> list[MeetingRow]:
    """The org's meetings, newest first; `search` matches the title or either id."""
    query = select(Meeting).where(Meeting.org_id == org_id)
    if search:
        like = f"%{search.strip().lower()}%"
        query = query.where(
            or_(
                func.lower(Meeting.title).like(like),
                func.lower(Meeting.external_id).like(like),
                Meeting.id == search.strip(),
            )
        )
    rows = list(session.scalars(query.order_by(Meeting.received_at.desc()).limit(limit)))
    counts: dict[str, Counter[str]] = {row.id: Counter() for row in rows}
    if rows:
        for meeting_id, state, count in session.execute(
            select(OpRecord.meeting_id, OpRecord.state, func.count())
            .where(OpRecord.meeting_id.in_(list(counts)))
            .group_by(OpRecord.meeting_id, OpRecord.state)
        ):
            counts[meeting_id][state] = count
    return [_row(row, counts[row.id]) for row in rows]


def get_meeting(session: Session, org_id: str, meeting_id: str) -> Meeting:
    """The org's meeting; NotFound for another org's exactly as for none."""
    row = session.get(Meeting, meeting_id)
    if row is None or row.org_id != org_id:
        raise NotFound(f"no meeting {meeting_id!r} in this org")
    return row


def timeline(session: Session, org_id: str, meeting_id: str) -> Timeline:
    """What happened to one meeting, stage by stage, from what is stored."""
    row = get_meeting(session, org_id, meeting_id)
    ops = list(
        session.scalars(
            select(OpRecord)
            .where(OpRecord.meeting_id == row.id)
            .order_by(OpRecord.created_at, OpRecord.key)
        )
    )
    record = session.scalars(
        select(InsightRecord)
        .where(InsightRecord.meeting_id == row.id)
        .order_by(InsightRecord.id.desc())
        .limit(1)
    ).first()
    decisions: dict[str, Decision] = {}
    for request in session.scalars(
        select(ReviewRequest)
        .where(ReviewRequest.meeting_id == row.id)
        .order_by(ReviewRequest.created_at, ReviewRequest.id)
    ):
        if request.op_key:  # the newest request of an op is the one that counts
            decisions[request.op_key] = Decision(
                state=request.state,
                decided_by=request.decided_by,
                decided_at=request.decided_at,
                expires_at=request.expires_at,
                corrections=request.corrections or [],
            )
    return Timeline(
        meeting=_row(row, Counter(op.state for op in ops)),
        error=mask_text(row.error) if row.error else None,
        revision=row.revision,
        extracted_at=record.created_at if record else None,
        facts=facts_of(record.insights) if record else [],
        ops=[_op_line(op, decisions.get(op.key)) for op in ops],
    )


def mark_rerun(session: Session, org_id: str, meeting_id: str) -> Meeting:
    """Put a meeting back to `received` so extraction runs again; the caller enqueues it.

    The extraction cache and the ledger make an unchanged part cost nothing and write
    nothing twice."""
    row = get_meeting(session, org_id, meeting_id)
    row.status, row.error = MeetingStatus.RECEIVED, None
    session.flush()
    return row


def facts_of(insights: dict[str, Any]) -> list[Fact]:
    """Every extracted value with its evidence: action items first, then CRM fields."""
    facts = [
        Fact(name=f"action item {n}", value=item.get("title"), evidence=item.get("evidence"))
        for n, item in enumerate(insights.get("action_items") or [], start=1)
    ]
    for name, fact in (insights.get("crm") or {}).items():
        if isinstance(fact, dict):
            value = fact.get("value", fact.get("values"))
            facts.append(Fact(name=name, value=value, evidence=fact.get("evidence")))
    return facts


def _row(row: Meeting, states: Counter[str]) -> MeetingRow:
    return MeetingRow(
        id=row.id,
        external_id=row.external_id,
        title=row.title,
        status=row.status,
        source=row.source,
        received_at=row.received_at,
        ops=dict(states),
    )


def _op_line(op: OpRecord, review: Decision | None) -> OpLine:
    item = op.item or {}
    return OpLine(
        key=op.key,
        connector=op.connector,
        connection=op.connection,
        action=op.action,
        destination=op.destination,
        title=item.get("title"),
        evidence=item.get("evidence"),
        state=op.state,
        attempts=op.attempts,
        url=op.url,
        error=mask_text(op.last_error) if op.last_error else None,
        planned_at=op.created_at,
        updated_at=op.updated_at,
        review=review,
    )
