"""GET /v1/meetings/{id}: a meeting's state and what was pushed where.

Each push names its action item (`title`) and, once a re-extraction no longer found that
item, its `disposition`: `missing` (the record was kept as it is), `closed` (the
destination's `on_missing: close` finished it) or `reopened` (closed, then extracted
again). `removed_items` lists the items of the first two kinds, so a person sees that an
item disappeared and what was done about it.
"""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel
from sqlalchemy import select

from meetsync.db.models import Meeting, OpRecord
from meetsync.db.session import session_scope

router = APIRouter()
# a removed item's disposition → what was done with its record
OUTCOMES = {"missing": "kept", "closed": "closed"}


class Push(BaseModel):
    key: str
    provider: str
    connection: str
    action: str
    object: str | None
    state: str
    external_id: str | None
    url: str | None
    error: str | None
    destination: str | None
    title: str | None
    disposition: str | None


class RemovedItem(BaseModel):
    """An item a re-extraction no longer found, and what happened to its record."""

    key: str
    destination: str | None
    provider: str
    title: str | None
    disposition: str
    outcome: str  # `kept` or `closed`
    state: str  # of the closing write, or of the kept record's last write
    url: str | None


class MeetingStatus(BaseModel):
    id: str
    org_id: str
    meeting_id: str
    title: str
    status: str
    revision: int
    ops: dict[str, int]
    pushes: list[Push]
    removed_items: list[RemovedItem]
    error: str | None


def overall_status(meeting_status: str, states: Counter[str]) -> str:
    """A meeting is done when every op is done; failed ops make it `partial`."""
    if meeting_status in {"received", "extracting", "extracted", "failed"} or not states:
        return meeting_status
    if states["planned"] or states["sending"]:
        return "pushing"
    if states["awaiting_review"]:
        return "awaiting_review"
    if states["failed"] or states["dead"] or states["paused"]:
        return "partial"
    return "done"


@router.get("/v1/meetings/{meeting_id}", response_model=MeetingStatus)
def meeting_status(meeting_id: str, request: Request) -> MeetingStatus:
    settings = request.app.state.settings
    with session_scope(settings.database_url) as session:
        meeting = session.get(Meeting, meeting_id)
        if meeting is None:
            raise HTTPException(404, f"no meeting {meeting_id}")
        ops = session.scalars(
            select(OpRecord).where(OpRecord.meeting_id == meeting_id).order_by(OpRecord.created_at)
        ).all()
        states = Counter(op.state for op in ops)
        return MeetingStatus(
            id=meeting.id,
            org_id=meeting.org_id,
            meeting_id=meeting.external_id,
            title=meeting.title,
            status=overall_status(meeting.status, states),
            revision=meeting.revision,
            ops=dict(states),
            pushes=[
                Push(
                    key=op.key,
                    provider=op.connector,
                    connection=op.connection,
                    action=op.action,
                    object=op.object or op.target.get("object"),
                    state=op.state,
                    external_id=op.external_id,
                    url=op.url,
                    error=op.last_error,
                    destination=op.destination,
                    title=(op.item or {}).get("title"),
                    disposition=op.disposition,
                )
                for op in ops
            ],
            removed_items=[
                RemovedItem(
                    key=op.key,
                    destination=op.destination,
                    provider=op.connector,
                    title=(op.item or {}).get("title"),
                    disposition=op.disposition,
                    outcome=OUTCOMES[op.disposition],
                    state=op.state,
                    url=op.url,
                )
                for op in ops
                if op.disposition in OUTCOMES
            ],
            error=meeting.error,
        )
