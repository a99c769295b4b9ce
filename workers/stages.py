"""The pipeline's stages as plain functions of what is stored plus one call outward."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import Insert, Select, bindparam, insert, select, update
from sqlalchemy.orm import Session, aliased, defer
from sqlalchemy.sql.dml import Update

from extraction.cache import extraction_key, stored_insights
from extraction.memory import meeting_profile
from extraction.schemas import Insights
from mappings.planner import current_mapping, parsed, plan_stored
from mappings.spec import Mapping as MappingSpec
from meetsync.db.models import (
    InsightRecord,
    MappingVersion,
    Meeting,
    OpRecord,
    Org,
)
from meetsync.links import meeting_link
from meetsync.models import MeetingOutput
from meetsync.states import Disposition, MeetingStatus
from meetsync.transcripts import with_transcript
from workers import commitments, enrich, experiments, ledger, review
from workers.closing import close_fields, finishing
from workers.pushing import Planned, planned
from workers.runtime import Runtime

log = logging.getLogger(__name__)


class MeetingGone(LookupError):
    """The message names a meeting or op that no longer exists."""


def cache_key(runtime: Runtime, session: Session, meeting: Meeting, profile: dict[str, Any]) -> str:
    """The meeting's extraction cache key under its arm's models and prompts."""
    llm = experiments.routed(runtime, session, meeting).llm
    return extraction_key(llm, meeting.transcript_hash, profile)


def recalled_profile(
    runtime: Runtime,
    session: Session,
    meeting: Meeting,
    org: Org | None,
    payload: MeetingOutput | None = None,
) -> dict[str, Any]:
    """The org's profile plus what its memory recalls for this meeting (extraction/memory);
    `payload` is the meeting's stored payload when the caller has validated it already."""
    payload = payload or MeetingOutput.model_validate(meeting.payload)
    llm = runtime.settings.llm
    profile = org.profile if org else {}
    return meeting_profile(
        session, meeting.org_id, profile, payload, llm.memory_budget_tokens, llm.memory_semantic
    )


@dataclass(frozen=True)
class Extracted:
    """What extraction left for planning: the cache key of the insights to plan from."""

    key: str
    fresh: bool  # False when cached insights already covered the meeting
    org_id: str = ""
    usage: list[dict[str, Any]] = field(default_factory=list)  # the fresh run's LLM calls
    shadows: bool = False  # a running experiment has shadow arms for this meeting
    backfill: bool = False  # a replayed meeting: planned on the backfill lane
    # what planning would otherwise read and validate again: the extract actor plans in
    # the same message, right after this (the stored payload, the insights just stored)
    payload: MeetingOutput | None = field(default=None, compare=False, repr=False)
    insights: Insights | None = field(default=None, compare=False, repr=False)


def extract(runtime: Runtime, meeting_id: str) -> Extracted:
    """Extract insights for a meeting (or find them in the cache)."""
    with runtime.session() as session:
        # one statement for both
        loaded = session.execute(_meeting_with_org(), {"meeting_id": meeting_id}).first()
        if loaded is None:
            raise MeetingGone(meeting_id)
        meeting, org = loaded
        payload = MeetingOutput.model_validate(meeting.payload)  # validated once per stage
        profile = recalled_profile(runtime, session, meeting, org, payload)
        routing = experiments.routed(runtime, session, meeting)  # the meeting's arm
        key = extraction_key(routing.llm, meeting.transcript_hash, profile)
        cached = session.scalars(_cached_insights(), {"meeting_id": meeting_id, "key": key}).first()
        shadows, org_id = bool(routing.shadows), meeting.org_id
        backfill = meeting.source == "backfill"
        # Core, not the ORM's flush of a dirty meeting (meetsync/db/session.py)
        status = MeetingStatus.EXTRACTED if cached is not None else MeetingStatus.EXTRACTING
        session.connection().execute(_meeting_status(), {"meeting_id": meeting_id, "to": status})
        if cached is not None:
            return Extracted(key, False, org_id, [], shadows, backfill, payload=payload)
        revision = meeting.revision
    # a transcript sent as a URL is fetched here, not in the webhook (meetsync/transcripts.py)
    stored, payload = payload, with_transcript(payload, runtime.settings.transcript_fetch)
    result, run = experiments.timed_extract(payload, routing, profile)
    usage = [u.model_dump(mode="json") for u in result.usage]
    with runtime.session() as session:
        # Core: the ORM's flush would also read the new id back, which nothing here needs
        connection = session.connection()
        connection.execute(
            _insights_insert(),
            {
                "meeting_id": meeting_id,
                "revision": revision,
                "cache_key": key,
                "insights": result.insights.model_dump(mode="json"),
                "usage": usage,
                **run,
            },
        )
        extracted = {"meeting_id": meeting_id, "to": MeetingStatus.EXTRACTED}
        connection.execute(_meeting_status(), extracted)
    return Extracted(
        key, True, org_id, usage, shadows, backfill, payload=stored, insights=result.insights
    )


# built once, run with bind parameters (why: meetsync/db/session.py)
@cache
def _meeting_with_org() -> Select[Meeting, Org]:
    """A meeting (`meeting_id`) and its org, in one statement."""
    return (
        select(Meeting, Org)
        .outerjoin(Org, Org.id == Meeting.org_id)
        .where(Meeting.id == bindparam("meeting_id"))
    )


@cache
def _cached_insights() -> Select[InsightRecord]:
    """A meeting's (`meeting_id`) insights under an extraction cache key (`key`)."""
    return select(InsightRecord).where(
        InsightRecord.meeting_id == bindparam("meeting_id"),
        InsightRecord.cache_key == bindparam("key"),
    )


@cache
def _meeting_status() -> Update:
    """A meeting (`meeting_id`) moved to a status (`to`)."""
    moved = update(Meeting).where(Meeting.id == bindparam("meeting_id"))
    return moved.values(status=bindparam("to"))


@cache
def _insights_insert() -> Insert:
    """One extraction run's insights (InsightRecord's columns as bind parameters)."""
    return insert(InsightRecord)


def fail_meeting(runtime: Runtime, meeting_id: str, reason: str) -> None:
    """The meeting cannot be extracted: failed, with the reason shown in status and the API."""
    with runtime.session() as session:
        meeting = session.get(Meeting, meeting_id)
        if meeting is not None:
            meeting.status, meeting.error = MeetingStatus.FAILED, reason


def plan(
    runtime: Runtime,
    meeting_id: str,
    session: Session | None = None,
    key: str | None = None,
    extracted: Extracted | None = None,
) -> list[Planned]:
    """Render the latest insights through the org's mapping into ledger rows to push
    (in the caller's `session` when given: a replan looks before it commits). `key` is
    the cache key extraction just used; without it the meeting's memory is recalled again.
    `extracted` is that extraction's result, when it holds the payload and insights."""
    key = extracted.key if extracted is not None else key
    given = extracted if extracted is not None and extracted.payload is not None else None
    known = None if given is None else given.insights
    with nullcontext(session) if session is not None else runtime.session() as session:
        if key is None:
            meeting = session.get(Meeting, meeting_id)
            if meeting is None:
                raise MeetingGone(meeting_id)
            payload = MeetingOutput.model_validate(meeting.payload)
            org = session.get(Org, meeting.org_id)
            profile = recalled_profile(runtime, session, meeting, org, payload)
            key = cache_key(runtime, session, meeting, profile)
            record = stored_insights(session, meeting_id, key)
            mapping = current_mapping(session, meeting.org_id)
        else:
            loaded = planning_inputs(session, meeting_id, key, given is None, known is None)
            if loaded is None:
                raise MeetingGone(meeting_id)
            meeting, record, mapping = loaded
            # validated once per stage: in extraction when it hands them over
            handed = None if given is None else given.payload
            payload = handed or MeetingOutput.model_validate(meeting.payload)
        if record is None or mapping is None:
            meeting.status = MeetingStatus.FAILED
            meeting.error = "no insights" if record is None else "org has no mapping"
            return []
        spec, version = mapping
        insights = known if known is not None else Insights.model_validate(record.insights)
        made = plan_stored(
            session,
            payload,
            insights,
            spec,
            meeting_url=meeting_link(runtime.settings, meeting.id),
            stored_id=meeting.id,
            mapping_version=version,
            providers=meeting.connectors,  # a backfill limited to some providers
        )
        rows = ledger.record_plan(session, meeting_id, made.ops, version, made.identities())
        # review (workers/review.py): ops a policy holds wait in the ledger as
        # `awaiting_review` and are not enqueued; the record names its arm's models and prompts
        llm = runtime.settings.llm
        models = record.models or llm.models
        prompts = record.prompt_versions or llm.prompt_versions
        # every ledger row of the meeting: those read before planning and those just added
        held = {r.key: r for r in made.existing}
        held |= {r.key: r for r in rows if r.meeting_id == meeting.id}
        rows = review.hold(
            session, meeting, spec, made, insights, rows, models, prompts, payload=payload
        )
        policies = {d.name: d.on_missing for d in spec.destinations}
        rows += _settle_missing(meeting, made.gone, policies)
        rows += commitments.close_reported(session, meeting, insights)
        commitments.remember(session, meeting, payload, insights, rows=list(held.values()))
        meeting.status = MeetingStatus.PLANNED
        backfill = meeting.source == "backfill"
        waits = {op.key: enrich.waits_for(op) for op in made.ops}
        awaited = {key for keys in waits.values() for key in keys}
        pushed_now = {row.key for row in rows}
        return [
            planned(
                row,
                backfill,
                unawaited=row.key not in awaited,
                # a recap whose records are pushed with it is woken by them, not sent now
                deferred=any(key in pushed_now for key in waits.get(row.key, [])),
            )
            for row in rows
        ]


def planning_inputs(
    session: Session, meeting_id: str, key: str, payload: bool = True, insights: bool = True
) -> tuple[Meeting, InsightRecord | None, tuple[MappingSpec, int] | None] | None:
    """The meeting, its insights (`stored_insights`) and its org's current mapping
    (`current_mapping`) in one statement; None when the meeting is gone. The payload and
    the insights stay unread (loaded if touched) when the caller holds them already."""
    params = {"meeting_id": meeting_id, "key": key}
    loaded = session.execute(_planning_inputs(payload, insights), params).first()
    if loaded is None:
        return None
    meeting, record, row = loaded
    return meeting, record, None if row is None else (parsed(row.body), row.version)


@cache
def _planning_inputs(
    payload: bool, insights: bool
) -> Select[Meeting, InsightRecord, MappingVersion]:
    """`planning_inputs`' statement for a meeting (`meeting_id`) and cache key (`key`),
    built once for each pair of columns read or left unread."""
    one, each = aliased(InsightRecord), aliased(MappingVersion)
    insight = (
        select(one.id)
        .where(one.meeting_id == Meeting.id)
        .order_by((one.cache_key == bindparam("key")).desc(), one.id.desc())
        .limit(1)
        .correlate(Meeting)
        .scalar_subquery()
    )
    latest = (
        select(each.id)
        .where(each.org_id == Meeting.org_id)
        .order_by(each.version.desc())
        .limit(1)
        .correlate(Meeting)
        .scalar_subquery()
    )
    return (
        select(Meeting, InsightRecord, MappingVersion)
        .select_from(Meeting)
        .outerjoin(InsightRecord, InsightRecord.id == insight)
        .outerjoin(MappingVersion, MappingVersion.id == latest)
        .where(Meeting.id == bindparam("meeting_id"))
        .options(
            *([] if payload else [defer(Meeting.payload)]),
            *([] if insights else [defer(InsightRecord.insights)]),
        )
    )


def _settle_missing(
    meeting: Meeting, gone: list[OpRecord], policies: Mapping[str, str]
) -> list[OpRecord]:
    """Report items a re-run no longer extracts; close those whose destination says so."""
    to_push: list[OpRecord] = []
    for row in gone:
        if row.disposition in ledger.GONE:
            continue  # reported on an earlier run
        title = (row.item or {}).get("title")
        closing = close_fields(row.connector, row.target) if title is not None else None
        if policies.get(row.destination or "") == "close" and closing is not None:
            ledger.repay(row, *finishing(row.action, row.target, row.fields, closing))
            row.disposition = Disposition.CLOSED
            if row.state not in ledger.RESTING:
                to_push.append(row)
        else:
            row.disposition = Disposition.MISSING
        # the item's title is what the org wrote itself; the transcript stays out of logs
        log.warning(
            "meeting %s revision %d: op %s (%s) no longer extracted: %s",
            meeting.id,
            meeting.revision,
            row.key,
            row.destination,
            row.disposition,
        )
    return to_push
