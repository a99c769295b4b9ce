"""Stores an incoming meeting: one transaction, so a meeting is never half-stored."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from meetsync.db.models import Meeting, Org
from meetsync.models import MeetingOutput


class UnknownOrg(LookupError):
    """The payload names an org meetsync does not serve."""


@dataclass(frozen=True)
class Stored:
    meeting_id: str
    changed: bool  # False when the same transcript was already stored: nothing to redo


def transcript_hash(meeting: MeetingOutput) -> str:
    """Identity of what extraction reads; a redelivery with the same hash changes nothing."""
    blob = meeting.model_dump_json(include={"title", "start", "attendees", "transcript", "summary"})
    return hashlib.sha256(blob.encode()).hexdigest()


def store_meeting(session: Session, meeting: MeetingOutput, source: str = "live") -> Stored:
    """Insert the meeting, or update it when the notes pipeline sends a new revision."""
    if session.get(Org, meeting.org_id) is None:
        raise UnknownOrg(meeting.org_id)
    digest = transcript_hash(meeting)
    row = session.scalars(
        select(Meeting).where(
            Meeting.org_id == meeting.org_id, Meeting.external_id == meeting.meeting_id
        )
    ).first()
    payload = meeting.model_dump(mode="json")
    if row is None:
        row = Meeting(
            org_id=meeting.org_id,
            external_id=meeting.meeting_id,
            title=meeting.title,
            payload=payload,
            transcript_hash=digest,
            source=source,
        )
        session.add(row)
        session.flush()
        return Stored(row.id, changed=True)
    # a new delivery is processed again: the extraction cache and the ledger make an
    # unchanged meeting cost nothing, and a changed one updates what was written
    row.status, row.error = "received", None
    if row.transcript_hash == digest:
        return Stored(row.id, changed=False)
    row.payload, row.title, row.transcript_hash = payload, meeting.title, digest
    row.revision += 1
    return Stored(row.id, changed=True)
