"""Dead letters: ops parked as `failed`, `dead` or `paused`, and meetings that `failed`,
each with the reason, until replayed.

A replay puts the op back in line after a fix (a mapping change, a reconnected account).
An op that may have reached the provider is replayed *in doubt*, so its next push runs
`find()` before writing; replaying twice, or replaying an op that has since settled,
changes nothing. Replay only touches the ledger; the caller enqueues the returned keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from meetsync.db.models import Meeting, OpRecord
from meetsync.states import MeetingStatus
from workers import ledger


class NoSuchOp(LookupError):
    """No op (or meeting), or more than one, has the given key or key prefix."""


@dataclass(frozen=True)
class DeadLetter:
    key: str
    org_id: str
    meeting_id: str
    connector: str
    connection: str
    action: str
    state: str
    attempts: int
    reason: str | None
    external_id: str | None
    updated_at: datetime

    @classmethod
    def of(cls, row: OpRecord) -> DeadLetter:
        return cls(
            key=row.key,
            org_id=row.org_id,
            meeting_id=row.meeting_id,
            connector=row.connector,
            connection=row.connection,
            action=row.action,
            state=row.state,
            attempts=row.attempts,
            reason=row.last_error,
            external_id=row.external_id,
            updated_at=row.updated_at,
        )


def list_dead(
    session: Session,
    *,
    org: str | None = None,
    connector: str | None = None,
    state: str | None = None,
    limit: int = 500,
) -> list[DeadLetter]:
    """Dead letters, oldest first, filtered by org, connector or state."""
    query = select(OpRecord).where(OpRecord.state.in_(sorted(ledger.RESTING)))
    if org:
        query = query.where(OpRecord.org_id == org)
    if connector:
        query = query.where(OpRecord.connector == connector)
    if state:
        query = query.where(OpRecord.state == state)
    rows = session.scalars(query.order_by(OpRecord.updated_at, OpRecord.key).limit(limit))
    return [DeadLetter.of(row) for row in rows]


def get_op(session: Session, key: str) -> OpRecord:
    """The op with this key, or the only one whose key starts with it."""
    row = session.get(OpRecord, key)
    if row is not None:
        return row
    found = session.scalars(select(OpRecord).where(OpRecord.key.startswith(key)).limit(2)).all()
    if len(found) != 1:
        raise NoSuchOp(f"{'no' if not found else 'more than one'} op with key {key!r}")
    return found[0]


def describe(row: OpRecord) -> dict[str, Any]:
    """Everything an operator needs to judge one op, as JSON-able data."""
    return {
        **{k: v for k, v in vars(DeadLetter.of(row)).items() if k != "updated_at"},
        "updated_at": row.updated_at.isoformat(),
        "target": row.target,
        "fields": sorted(row.fields),  # names only: values may quote the transcript
        "payload_hash": row.payload_hash,
        "applied_hash": row.applied_hash,
        "mapping_version": row.mapping_version,
        "destination": row.destination,
        "disposition": row.disposition,
        "url": row.url,
    }


def replay(session: Session, rows: list[OpRecord]) -> list[tuple[str, str]]:
    """Put dead letters back in line; (key, connector) of each op to enqueue."""
    return [(row.key, row.connector) for row in rows if ledger.replay(row)]


@dataclass(frozen=True)
class FailedMeeting:
    """A meeting whose extraction or plan failed for good, with the reason."""

    id: str
    org_id: str
    external_id: str
    source: str
    reason: str | None
    updated_at: datetime


def failed_meetings(
    session: Session, *, org: str | None = None, limit: int = 500
) -> list[FailedMeeting]:
    """Meetings that ended `failed` (an LLM unreachable past its retries, a refusal, no
    mapping), oldest first."""
    query = select(Meeting).where(Meeting.status == MeetingStatus.FAILED)
    if org:
        query = query.where(Meeting.org_id == org)
    rows = session.scalars(query.order_by(Meeting.updated_at, Meeting.id).limit(limit))
    return [
        FailedMeeting(r.id, r.org_id, r.external_id, r.source, r.error, r.updated_at) for r in rows
    ]


def replay_meeting(session: Session, ref: str) -> Meeting:
    """Put a failed meeting back in line for extraction; the caller enqueues it.

    Its stored insights stay: an extraction that had finished is not paid for twice (the
    cache), and the plan stage matches its items to the ops already written.
    """
    row = (
        session.get(Meeting, ref)
        or session.scalars(select(Meeting).where(Meeting.external_id == ref).limit(2)).one_or_none()
    )
    if row is None:
        raise NoSuchOp(f"no meeting {ref!r}")
    if row.status == MeetingStatus.FAILED:
        row.status, row.error = MeetingStatus.RECEIVED, None
    return row
