"""One org's dead letters, listed and replayed: `workers.dead_letters` scoped to the org."""

from __future__ import annotations

from sqlalchemy.orm import Session

from admin.errors import NotFound
from meetsync.db.models import OpRecord
from meetsync.masking import mask_text
from workers import dead_letters
from workers.dead_letters import DeadLetter, FailedMeeting


def list_dead(session: Session, org_id: str) -> list[DeadLetter]:
    """The org's failed, dead and paused ops, oldest first, with the provider's reason."""
    return [
        _masked(letter)
        for letter in dead_letters.list_dead(session, org=org_id)
        if letter.org_id == org_id
    ]


def failed_meetings(session: Session, org_id: str) -> list[FailedMeeting]:
    return dead_letters.failed_meetings(session, org=org_id)


def retry(session: Session, org_id: str, keys: list[str]) -> list[str]:
    """Put the org's dead letters back in line; the keys to enqueue (settled ones are left)."""
    rows = []
    for key in keys:
        row = session.get(OpRecord, key)
        if row is None or row.org_id != org_id:
            raise NotFound(f"no op {key[:12]!r} in this org")
        rows.append(row)
    return [key for key, _ in dead_letters.replay(session, rows)]


def _masked(letter: DeadLetter) -> DeadLetter:
    reason = mask_text(letter.reason) if letter.reason else None
    return DeadLetter(**{**vars(letter), "reason": reason})
