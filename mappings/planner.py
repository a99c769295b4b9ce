"""The one planner: a meeting's insights through an org's mapping into the Ops to push.

The pipeline's plan stage, `mappings preview`, backfill's dry run (and, next, review) all
plan here, so what a preview shows is what the pipeline pushes, keys and payload hashes
included:

1. the mapping: a draft the caller gives, or the org's current version (`current_mapping`);
2. the engine renders every op with the meeting's signed link (`meetsync.links.meeting_link`);
3. identity: each new per-item op is matched to an op the ledger already holds for the same
   meeting and destination, so a re-worded item keeps its key (`mappings.identity`); the
   engine renders again with those renames, so whatever links the item (a recap) names the
   kept key too;
4. a backfill limited to some providers (`--providers`) keeps only their ops;
5. the org's structured preferences (org memory) change the ops they match
   (`mappings.preferences`);
6. fields a review policy never writes are left out (`mappings.review`).

Nothing here writes: recording the plan in the ledger is the plan stage's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cache, lru_cache

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from connectors.base import Op, payload_hash
from extraction.schemas import Insights
from meetsync.db.models import MappingVersion, OpRecord
from meetsync.memory import PreferenceEntry
from meetsync.models import MeetingOutput

from . import identity
from .engine import PlannedOp, plan_items
from .loader import load_mapping
from .preferences import apply_rules, org_rules
from .spec import Mapping


@dataclass(frozen=True)
class Plan:
    """The ops of one meeting, and what they make of the ledger's earlier ones."""

    planned: list[PlannedOp]
    mapping_version: int | None
    renames: dict[str, str] = field(default_factory=dict)
    gone: list[OpRecord] = field(default_factory=list)  # earlier ops no longer planned
    existing: Sequence[OpRecord] = ()  # the ledger's rows of the meeting before this plan

    @property
    def ops(self) -> list[Op]:
        return [p.op for p in self.planned]

    def identities(self) -> dict[str, dict[str, str]]:
        """Each per-item op's identity, as the ledger keeps it for the next re-run."""
        return {k: i.as_json() for k, i in identity.identities(self.planned).items()}


def current_mapping(session: Session, org_id: str) -> tuple[Mapping, int] | None:
    """The org's latest mapping version, parsed; None when it has none."""
    row = session.scalars(
        select(MappingVersion)
        .where(MappingVersion.org_id == org_id)
        .order_by(MappingVersion.version.desc())
        .limit(1)
    ).first()
    return None if row is None else (parsed(row.body), row.version)


@lru_cache(maxsize=256)
def parsed(body: str) -> Mapping:
    """A stored version's body, parsed and checked once per process (versions never change)."""
    return load_mapping(body)


def ledger_ops(session: Session, stored_id: str | None) -> Sequence[OpRecord]:
    """What the ledger already holds for a stored meeting (nothing for one not stored)."""
    if stored_id is None:
        return []
    return session.scalars(_meeting_ops(), {"meeting_id": stored_id}).all()


@cache
def _meeting_ops() -> Select[OpRecord]:
    """A meeting's (`meeting_id`) ledger rows, built once (meetsync/db/session.py)."""
    return select(OpRecord).where(OpRecord.meeting_id == bindparam("meeting_id"))


def plan_meeting(
    meeting: MeetingOutput,
    insights: Insights,
    mapping: Mapping,
    *,
    meeting_url: str,
    existing: Sequence[OpRecord] = (),
    mapping_version: int | None = None,
    providers: Sequence[str] | None = None,
    preferences: Sequence[PreferenceEntry] = (),
) -> Plan:
    """Every op the mapping asks for, with the keys the ledger already knows them by."""

    def render(renames: dict[str, str] | None = None) -> list[PlannedOp]:
        made = plan_items(meeting, insights, mapping, meeting_url=meeting_url, renames=renames)
        if providers:
            made = [p for p in made if p.op.connector in providers]
        return made

    planned = render()
    renames = identity.match(identity.identities(planned), existing)
    if renames:
        # a re-worded item keeps the key of what was written for it (the write becomes an
        # update); rendered again so whatever links it (a recap) names that key too
        planned = render(renames)
    gone = identity.missing(existing, {p.op.key for p in planned})
    planned = apply_rules(meeting, planned, preferences)
    return Plan(without_unwritten(mapping, planned), mapping_version, renames, gone, existing)


def without_unwritten(mapping: Mapping, planned: list[PlannedOp]) -> list[PlannedOp]:
    """The plan without the fields a review policy says meetsync never writes (an op left
    with no field is not planned); keys stay, payload hashes follow the fields."""
    policies = {d.name: d.review for d in mapping.destinations}
    kept: list[PlannedOp] = []
    for p in planned:
        policy = policies.get(p.destination)
        dropped = policy.dropped_fields(p.op.fields) if policy else []
        if not dropped:
            kept.append(p)
            continue
        fields = {k: v for k, v in p.op.fields.items() if k not in dropped}
        if fields:
            digest = payload_hash(p.op.action, p.op.target, fields)
            op = p.op.model_copy(update={"fields": fields, "payload_hash": digest})
            kept.append(replace(p, op=op))
    return kept


def plan_stored(
    session: Session,
    meeting: MeetingOutput,
    insights: Insights,
    mapping: Mapping,
    *,
    meeting_url: str,
    stored_id: str | None,
    mapping_version: int | None = None,
    providers: Sequence[str] | None = None,
) -> Plan:
    """`plan_meeting` against the ledger's ops of the stored meeting (if it is stored) and
    under the org's preferences."""
    return plan_meeting(
        meeting,
        insights,
        mapping,
        meeting_url=meeting_url,
        existing=ledger_ops(session, stored_id),
        mapping_version=mapping_version,
        providers=providers,
        preferences=org_rules(session, meeting.org_id),
    )
