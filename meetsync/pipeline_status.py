"""What the pipeline holds right now: meetings and ops by state, paused connections."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from meetsync.db.models import Connection, Meeting, OpRecord
from meetsync.masking import mask_text
from meetsync.states import MeetingStatus


def pipeline_status(session: Session) -> dict[str, Any]:
    """Counts per org and state, and the connections that are paused with their reason."""
    meetings = session.execute(
        select(Meeting.org_id, Meeting.status, func.count()).group_by(
            Meeting.org_id, Meeting.status
        )
    ).all()
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
