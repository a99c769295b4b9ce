"""What every backfill source yields: records in a stable order, each with a resume position."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from meetsync.models import MeetingOutput


@dataclass(frozen=True)
class SourceRecord:
    """One record: a meeting, or the reason it could not be read (reported, then skipped)."""

    position: str  # resume token: a rerun given it starts with the record after this one
    ref: str  # where the record is, for the report: "file.jsonl:12", "page 3 #4", an id
    meeting: MeetingOutput | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Window:
    """The org and the meetings' start-time range [since, until) a backfill covers."""

    org_id: str
    since: datetime
    until: datetime | None = None

    def covers(self, start: datetime) -> bool:
        return start >= self.since and (self.until is None or start < self.until)


class Source(Protocol):
    """A place past meetings come from; `describe()` names it in cursors and reports."""

    def describe(self) -> str: ...

    def count(self, window: Window) -> int | None:
        """How many records a full pass yields (for the progress bar), None when unknown."""
        ...

    def records(self, window: Window, after: str | None) -> Iterator[SourceRecord]:
        """Records in a stable order, starting after the position `after` (None: the start)."""
        ...


class SourceError(Exception):
    """The source itself cannot be read (not one bad record): the backfill stops."""
