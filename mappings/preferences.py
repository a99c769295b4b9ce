"""Org preferences as planning rules: `when` a planned op matches, `then` change it.

A structured preference (org memory, `meetsync.memory.PreferenceEntry` with `then`) is
applied here, inside the one planner, so the pipeline, `mappings preview` and backfill's
dry run plan alike:

```yaml
text: tasks for legal review go to the Legal project
when: {item_text_contains: legal review, destination: customer-followups}
then: {set_target: {project: Legal}}
---
text: never propose a stage change from calls with partners
when: {attendee_domain: partner.com}
then: {skip_fields: [StageName]}
```

Rules apply in a stable order (name, then id), a later rule's values winning; keys stay
(a rule changes what is written, never which item it is), payload hashes follow the
fields, and an op a rule leaves with no field is not planned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import cache

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from connectors.base import payload_hash
from meetsync.db.models import MemoryEntry
from meetsync.memory import PreferenceEntry, PreferenceWhen
from meetsync.models import MeetingOutput

from .engine import PlannedOp


def org_rules(session: Session, org_id: str) -> list[PreferenceEntry]:
    """The org's structured preferences, in the order they apply."""
    rows = session.scalars(_preferences(), {"org_id": org_id})
    rules = [PreferenceEntry.model_validate(row.data) for row in rows]
    return [r for r in rules if r.is_rule]


@cache
def _preferences() -> Select[MemoryEntry]:
    """An org's (`org_id`) preferences by name, built once (meetsync/db/session.py)."""
    return (
        select(MemoryEntry)
        .where(MemoryEntry.org_id == bindparam("org_id"), MemoryEntry.kind == "preference")
        .order_by(MemoryEntry.name, MemoryEntry.id)
    )


def apply_rules(
    meeting: MeetingOutput, planned: list[PlannedOp], rules: Sequence[PreferenceEntry]
) -> list[PlannedOp]:
    """The plan with every rule applied to the ops it matches."""
    if not rules:
        return planned
    kept: list[PlannedOp] = []
    for p in planned:
        target, fields = dict(p.op.target), dict(p.op.fields)
        for rule in rules:
            if rule.then is None or not matches(rule.when, meeting, p):
                continue
            fields |= rule.then.set
            target |= rule.then.set_target
            fields = {k: v for k, v in fields.items() if k not in rule.then.skip_fields}
        if (target, fields) == (p.op.target, p.op.fields):
            kept.append(p)
        elif fields:
            digest = payload_hash(p.op.action, target, fields)
            op = p.op.model_copy(
                update={"target": target, "fields": fields, "payload_hash": digest}
            )
            kept.append(replace(p, op=op))
    return kept


def matches(when: PreferenceWhen | None, meeting: MeetingOutput, planned: PlannedOp) -> bool:
    """Whether every condition of `when` holds for this op (no `when`: every op)."""
    if when is None:
        return True
    if when.destination is not None and when.destination != planned.destination:
        return False
    if when.connector is not None and when.connector != planned.op.connector:
        return False
    if when.item_text_contains is not None:
        item = planned.item
        text = f"{item.title} {item.description or ''}" if item is not None else ""
        if when.item_text_contains.casefold() not in text.casefold():
            return False
    if when.attendee_domain is not None:
        domains = {(a.email or "").rpartition("@")[2].lower() for a in meeting.attendees}
        if when.attendee_domain not in domains:
            return False
    return True
