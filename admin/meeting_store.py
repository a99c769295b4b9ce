"""Stores an incoming meeting: one transaction, so a meeting is never half-stored."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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
    stale: bool = False  # an older revision than the stored one: ignored
    created: bool = False


def transcript_hash(meeting: MeetingOutput) -> str:
    """Identity of what extraction reads; a redelivery with the same hash changes nothing."""
    blob = meeting.model_dump_json(
        include={"title", "start", "attendees", "transcript", "transcript_url", "summary"}
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def as_utc_naive(value: datetime | None) -> datetime | None:
    """The database keeps naive UTC timestamps."""
    return None if value is None else value.astimezone(UTC).replace(tzinfo=None)


def is_older(incoming: datetime | None, stored: datetime | None) -> bool:
    """True when both revisions are dated and the incoming one is strictly older."""
    if incoming is None or stored is None:
        return False
    return as_utc_naive(incoming) < stored  # type: ignore[operator]


def find_stored(session: Session, org_id: str, external_id: str) -> Meeting | None:
    return session.scalars(
        select(Meeting).where(Meeting.org_id == org_id, Meeting.external_id == external_id)
    ).first()


def new_meeting_row(
    meeting: MeetingOutput,
    source: str = "live",
    *,
    backfill_run: str | None = None,
    connectors: list[str] | None = None,
) -> dict[str, Any]:
    """The columns of a meeting stored for the first time (its id aside)."""
    return {
        "org_id": meeting.org_id,
        "external_id": meeting.meeting_id,
        "title": meeting.title,
        "payload": meeting.model_dump(mode="json"),
        "transcript_hash": transcript_hash(meeting),
        "source": source,
        "occurred_at": as_utc_naive(meeting.occurred_at),
        "backfill_run": backfill_run,
        "connectors": connectors,
    }


def store_meeting(
    session: Session,
    meeting: MeetingOutput,
    source: str = "live",
    *,
    backfill_run: str | None = None,
    connectors: list[str] | None = None,
) -> Stored:
    """Insert the meeting, or update it when the notes pipeline sends a newer revision."""
    if session.get(Org, meeting.org_id) is None:
        raise UnknownOrg(meeting.org_id)
    row = find_stored(session, meeting.org_id, meeting.meeting_id)
    if row is None:
        fields = new_meeting_row(meeting, source, backfill_run=backfill_run, connectors=connectors)
        row = Meeting(**fields)
        session.add(row)
        session.flush()
        return Stored(row.id, changed=True, created=True)
    if is_older(meeting.occurred_at, row.occurred_at):
        return Stored(row.id, changed=False, stale=True)
    if source == "live":
        # a live delivery is for every destination, whatever a backfill restricted before
        row.source, row.connectors = source, None
    elif row.source == "backfill":
        row.connectors = connectors
    if backfill_run is not None:
        row.backfill_run = backfill_run  # the run that last went through it tracks it
    if meeting.occurred_at is not None:
        row.occurred_at = as_utc_naive(meeting.occurred_at)
    digest = transcript_hash(meeting)
    if row.transcript_hash == digest:
        return Stored(row.id, changed=False)
    # a new revision is processed again: the extraction cache and the ledger make an
    # unchanged part cost nothing, and a changed one updates what was written
    row.status, row.error = "received", None
    row.payload, row.title = meeting.model_dump(mode="json"), meeting.title
    row.transcript_hash = digest
    row.revision += 1
    return Stored(row.id, changed=True)
