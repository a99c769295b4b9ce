"""Meetings already in the database, e.g. to replay them through a new mapping."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import ValidationError
from sqlalchemy import func, select

from admin.sources.base import SourceRecord, Window
from meetsync.db.models import Meeting
from meetsync.db.session import session_scope
from meetsync.models import MeetingOutput

BATCH = 500


class StoredMeetings:
    """The org's stored meetings in id order; position is the last meeting id."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    def describe(self) -> str:
        return "stored"

    def count(self, window: Window) -> int | None:
        with session_scope(self.database_url) as session:
            total = session.scalar(
                select(func.count()).select_from(Meeting).where(Meeting.org_id == window.org_id)
            )
        return int(total or 0)

    def records(self, window: Window, after: str | None) -> Iterator[SourceRecord]:
        last = after or ""
        while True:
            with session_scope(self.database_url) as session:
                rows = session.execute(
                    select(Meeting.id, Meeting.payload)
                    .where(Meeting.org_id == window.org_id, Meeting.id > last)
                    .order_by(Meeting.id)
                    .limit(BATCH)
                ).all()
            if not rows:
                return
            for meeting_id, payload in rows:
                last = meeting_id
                try:
                    meeting = MeetingOutput.model_validate(payload)
                except ValidationError as exc:
                    yield SourceRecord(meeting_id, meeting_id, problem=f"invalid record: {exc}")
                    continue
                yield SourceRecord(meeting_id, meeting_id, meeting=meeting)
