"""What the pipeline holds right now: meetings and ops by state, paused connections."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from meetsync.db.models import Connection, Meeting, OpRecord
from meetsync.masking import mask_text
from meetsync.states import MeetingStatus


def overall_status(meeting_status: str, states: Counter[str]) -> str:
    """A meeting is done when every op is done; failed ops make it `partial`.

    The one definition shared by `GET /v1/meetings/{id}` and `meetsync status`: the stored
    status stops at `planned`, the ops say the rest.
    """
    if meeting_status in {"received", "extracting", "extracted", "failed"} or not states:
        return meeting_status
    if states["planned"] or states["sending"]:
        return "pushing"
    if states["awaiting_review"]:
        return "awaiting_review"
    if states["failed"] or states["dead"] or states["paused"]:
        return "partial"
    return "done"


def meeting_counts(session: Session) -> list[tuple[str, str, int]]:
    """(org, overall status, meetings) for every org and status present."""
    states: dict[str, Counter[str]] = defaultdict(Counter)
    for meeting_id, state, count in session.execute(
        select(OpRecord.meeting_id, OpRecord.state, func.count()).group_by(
            OpRecord.meeting_id, OpRecord.state
        )
    ):
        states[meeting_id][state] += count
    counts: Counter[tuple[str, str]] = Counter()
    for meeting_id, org_id, status in session.execute(
        select(Meeting.id, Meeting.org_id, Meeting.status)
    ):
        counts[(org_id, overall_status(status, states.get(meeting_id, Counter())))] += 1
    return [(org, status, n) for (org, status), n in sorted(counts.items())]


def pipeline_status(session: Session) -> dict[str, Any]:
    """Counts per org and state, and the connections that are paused with their reason."""
    meetings = meeting_counts(session)
    ops = session.execute(
        select(OpRecord.org_id, OpRecord.connector, OpRecord.state, func.count()).group_by(
            OpRecord.org_id, OpRecord.connector, OpRecord.state
        )
    ).all()
    failed = session.execute(
        select(Meeting.org_id, Meeting.error, func.count())
        .where(Meeting.status == MeetingStatus.FAILED)
        .group_by(Meeting.org_id, Meeting.error)
    ).all()
    paused = session.scalars(select(Connection).where(Connection.status != "active")).all()
    return {
        "meetings": [{"org_id": o, "status": s, "count": n} for o, s, n in meetings],
        "ops": [{"org_id": o, "connector": c, "state": s, "count": n} for o, c, s, n in ops],
        # why meetings failed, e.g. an LLM account out of quota: the org's extraction stops
        "failed_meetings": [{"org_id": o, "reason": _masked(r), "count": n} for o, r, n in failed],
        "paused_connections": [
            {
                "name": c.name,
                "org_id": c.org_id,
                "status": c.status,
                "reason": _masked(c.status_reason),
            }
            for c in paused
        ],
    }


def _masked(reason: str | None) -> str | None:
    return mask_text(reason) if reason else None
