"""Item identity across re-extractions: a re-worded action item keeps its op key.

A re-run of a meeting (a retry, a new model or prompt, an edited transcript, a backfill)
may word an item differently, which gives it a new item key. Before the plan is recorded
each new per-item op is matched to an op of the same meeting and destination that the new
plan no longer has: same owner, a similar title (rapidfuzz) or a similar title and
overlapping evidence. A match takes over the old key, so the connector updates the task
already written instead of adding a second one.

Keys are only ever made by the mapping engine: the renames found here are handed back to
it (`plan_items(..., renames=)`), so an op that links a renamed one (a recap's
`target.after`) names it by the kept key as well.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz

from mappings.engine import PlannedOp
from mappings.keys import normalise_title
from meetsync.db.models import OpRecord

TITLE_ALONE = 85.0  # a title this close is the same item whatever the evidence
TITLE_WITH_EVIDENCE = 55.0  # a looser title, when the quotes overlap this much:
EVIDENCE = 75.0


@dataclass(frozen=True)
class Identity:
    """What names one op's item: its destination, and for action items owner/title/evidence."""

    destination: str
    title: str | None = None
    owner: str = ""
    evidence: str = ""

    def as_json(self) -> dict[str, str]:
        data = {"destination": self.destination, "owner": self.owner, "evidence": self.evidence}
        return data | ({"title": self.title} if self.title is not None else {})

    @classmethod
    def from_json(cls, data: dict[str, str] | None) -> Identity | None:
        if not data or "destination" not in data:
            return None
        return cls(
            data["destination"], data.get("title"), data.get("owner", ""), data.get("evidence", "")
        )


def identities(planned: Iterable[PlannedOp]) -> dict[str, Identity]:
    """Op key → identity for each planned op, under the key the engine gave it."""
    found: dict[str, Identity] = {}
    for p in planned:
        if p.item is None:
            found[p.op.key] = Identity(p.destination)
            continue
        owner = (p.item.owner_email or p.item.owner or "").strip().lower()
        found[p.op.key] = Identity(p.destination, p.item.title, owner, p.item.evidence)
    return found


def similarity(new: Identity, old: Identity) -> float:
    """0..100: how surely two action items of one destination are the same; 0 if not."""
    if new.title is None or old.title is None or new.owner != old.owner:
        return 0.0
    title = fuzz.token_set_ratio(normalise_title(new.title), normalise_title(old.title))
    if title >= TITLE_ALONE:
        return title
    evidence = fuzz.token_set_ratio(new.evidence.lower(), old.evidence.lower())
    if title >= TITLE_WITH_EVIDENCE and evidence >= EVIDENCE:
        return (title + evidence) / 2
    return 0.0


def match(new: dict[str, Identity], existing: Sequence[OpRecord]) -> dict[str, str]:
    """New op key → the existing op key it continues, for re-worded items only."""
    orphans = [
        (row.key, old)
        for row in existing
        if row.key not in new and (old := Identity.from_json(row.item)) is not None
    ]
    fresh = [(key, ident) for key, ident in new.items() if key not in {r.key for r in existing}]
    pairs = sorted(
        (
            (score, new_key, old_key)
            for new_key, ident in fresh
            for old_key, old in orphans
            if ident.destination == old.destination and (score := similarity(ident, old)) > 0
        ),
        key=lambda pair: (-pair[0], pair[1], pair[2]),  # best first, ties in a stable order
    )
    taken_new: set[str] = set()
    taken_old: set[str] = set()
    renames: dict[str, str] = {}
    for _, new_key, old_key in pairs:
        if new_key in taken_new or old_key in taken_old:
            continue
        renames[new_key] = old_key
        taken_new.add(new_key)
        taken_old.add(old_key)
    return renames


def missing(existing: Iterable[OpRecord], planned: set[str]) -> list[OpRecord]:
    """The meeting's earlier ops the new plan no longer has."""
    return [row for row in existing if row.key not in planned]
