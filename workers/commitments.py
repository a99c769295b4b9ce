"""Open commitments: each planned action item is remembered for its account and owner; an
item a later meeting reports as done (`Insights.closures`) closes the task it wrote.

Closing writes what `on_missing: close` writes (workers/closing.py): the connector's
closing fields, under a policy that leaves a status a person set alone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from extraction.memory.store import put_commitments
from extraction.schemas import Insights
from mappings.planner import ledger_ops
from meetsync.db.models import Meeting, MemoryEntry, OpRecord
from meetsync.hashing import stable_hash
from meetsync.models import MeetingOutput
from meetsync.states import Disposition
from workers import ledger
from workers.closing import close_fields, finishing

log = logging.getLogger(__name__)


def remember(
    session: Session,
    meeting: Meeting,
    payload: MeetingOutput,
    insights: Insights,
    rows: Sequence[OpRecord] | None = None,
) -> None:
    """Store each action item as an open commitment of its owner and the meeting's account
    (`rows`: every ledger row of the meeting, when the caller holds them; else read)."""
    keys: dict[str, list[str]] = {}
    if rows is None:
        rows = ledger_ops(session, meeting.id)
    for row in rows:
        title = (row.item or {}).get("title")
        if title is not None:
            keys.setdefault(title, []).append(row.key)
    account = payload.crm.account_id if payload.crm else None
    entries: dict[str, dict[str, Any]] = {}
    for item in insights.action_items:
        entry = {
            "title": item.title[:400],
            "owner": item.owner_email or item.owner,
            "account": account,
            "due_date": item.due_date,
            "meeting_id": payload.meeting_id,
            "since": payload.start.isoformat(),
            "op_keys": sorted(keys.get(item.title, [])),
        }
        ref = f"{meeting.id}:{stable_hash(item.title)[:16]}"
        entries[ref] = {k: v for k, v in entry.items() if v not in (None, [])}
    put_commitments(session, meeting.org_id, entries)


def close_reported(session: Session, meeting: Meeting, insights: Insights) -> list[OpRecord]:
    """Close the commitments this meeting reports as done; the earlier ops to push."""
    to_push: list[OpRecord] = []
    for closure in insights.closures:
        prefix = closure.commitment.removeprefix("c-")
        entry = session.scalars(
            select(MemoryEntry).where(
                MemoryEntry.org_id == meeting.org_id,
                MemoryEntry.kind == "commitment",
                MemoryEntry.id.startswith(prefix, autoescape=True),
            )
        ).first()
        if entry is None or entry.status != "open":
            continue
        entry.status = "closed"
        entry.data = {**entry.data, "status": "closed"}
        for key in entry.data.get("op_keys", []):
            row = session.get(OpRecord, key)
            closing = close_fields(row.connector, row.target) if row is not None else None
            if row is None or closing is None:
                continue
            ledger.repay(row, *finishing(row.action, row.target, row.fields, closing))
            row.disposition = Disposition.DONE  # a re-run of its meeting keeps it closed
            if row.state not in ledger.RESTING:
                to_push.append(row)
        log.info(
            "meeting %s closes commitment %s from meeting %s",
            meeting.id,
            entry.id,
            entry.data.get("meeting_id"),
        )
    session.flush()
    return to_push
