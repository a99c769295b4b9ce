"""The pipeline's stages as plain functions of what is stored plus one call outward."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, aliased

from connectors.base import Op, Receipt
from connectors.errors import AuthExpired, Permanent, RateLimited, Transient
from extraction.cache import extraction_key, stored_insights
from extraction.memory import meeting_profile
from extraction.schemas import Insights
from mappings.planner import current_mapping, parsed, plan_stored
from mappings.spec import Mapping as MappingSpec
from meetsync.db.models import (
    Connection,
    InsightRecord,
    MappingVersion,
    Meeting,
    OpRecord,
    Org,
)
from meetsync.links import meeting_link
from meetsync.models import MeetingOutput
from meetsync.states import ConnectionStatus, Disposition, MeetingStatus, OpState, PushState
from meetsync.transcripts import with_transcript
from workers import commitments, enrich, experiments, ledger, review
from workers.closing import close_fields, finishing
from workers.instrumented import Instrumented
from workers.lanes import Later, Route
from workers.runtime import Runtime

log = logging.getLogger(__name__)

RECORD_PAUSE_S = 0.1  # first wait before recording a receipt again; doubles up to the max
RECORD_PAUSE_MAX_S = 2.0


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


def extract(runtime: Runtime, meeting_id: str) -> Extracted:
    """Extract insights for a meeting (or find them in the cache)."""
    with runtime.session() as session:
        # one statement for both
        loaded = session.execute(
            select(Meeting, Org)
            .outerjoin(Org, Org.id == Meeting.org_id)
            .where(Meeting.id == meeting_id)
        ).first()
        if loaded is None:
            raise MeetingGone(meeting_id)
        meeting, org = loaded
        payload = MeetingOutput.model_validate(meeting.payload)  # validated once per stage
        profile = recalled_profile(runtime, session, meeting, org, payload)
        routing = experiments.routed(runtime, session, meeting)  # the meeting's arm
        key = extraction_key(routing.llm, meeting.transcript_hash, profile)
        cached = session.scalars(
            select(InsightRecord).where(
                InsightRecord.meeting_id == meeting_id, InsightRecord.cache_key == key
            )
        ).first()
        shadows, org_id = bool(routing.shadows), meeting.org_id
        backfill = meeting.source == "backfill"
        if cached is not None:
            meeting.status = MeetingStatus.EXTRACTED
            return Extracted(key, False, org_id, shadows=shadows, backfill=backfill)
        revision = meeting.revision
        meeting.status = MeetingStatus.EXTRACTING
    # a transcript sent as a URL is fetched here, not in the webhook (meetsync/transcripts.py)
    payload = with_transcript(payload, runtime.settings.transcript_fetch)
    result, run = experiments.timed_extract(payload, routing, profile)
    with runtime.session() as session:
        session.add(
            InsightRecord(
                meeting_id=meeting_id,
                revision=revision,
                cache_key=key,
                insights=result.insights.model_dump(mode="json"),
                usage=[u.model_dump(mode="json") for u in result.usage],
                **run,
            )
        )
        session.execute(
            update(Meeting).where(Meeting.id == meeting_id).values(status=MeetingStatus.EXTRACTED)
        )
    usage = [u.model_dump(mode="json") for u in result.usage]
    return Extracted(key, True, org_id, usage, shadows=shadows, backfill=backfill)


def fail_meeting(runtime: Runtime, meeting_id: str, reason: str) -> None:
    """The meeting cannot be extracted: failed, with the reason shown in status and the API."""
    with runtime.session() as session:
        meeting = session.get(Meeting, meeting_id)
        if meeting is not None:
            meeting.status, meeting.error = MeetingStatus.FAILED, reason


@dataclass(frozen=True)
class Planned:
    """An op to push, and the route that picks its lane and throttle bucket."""

    key: str
    route: Route

    @property
    def connector(self) -> str:
        return self.route.connector


def route_of(row: OpRecord, backfill: bool, unawaited: bool = False) -> Route:
    return Route(
        org=row.org_id,
        connector=row.connector,
        connection=row.connection,
        channel=(row.target or {}).get("channel"),
        backfill=backfill,
        unawaited=unawaited,
    )


def plan(
    runtime: Runtime, meeting_id: str, session: Session | None = None, key: str | None = None
) -> list[Planned]:
    """Render the latest insights through the org's mapping into ledger rows to push
    (in the caller's `session` when given: a replan looks before it commits). `key` is
    the cache key extraction just used; without it the meeting's memory is recalled again."""
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
            loaded = planning_inputs(session, meeting_id, key)
            if loaded is None:
                raise MeetingGone(meeting_id)
            meeting, record, mapping = loaded
            payload = MeetingOutput.model_validate(meeting.payload)  # validated once per stage
        if record is None or mapping is None:
            meeting.status = MeetingStatus.FAILED
            meeting.error = "no insights" if record is None else "org has no mapping"
            return []
        spec, version = mapping
        insights = Insights.model_validate(record.insights)
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
        awaited = {key for op in made.ops for key in enrich.waits_for(op)}
        return [
            Planned(row.key, route_of(row, backfill, unawaited=row.key not in awaited))
            for row in rows
        ]


def planning_inputs(
    session: Session, meeting_id: str, key: str
) -> tuple[Meeting, InsightRecord | None, tuple[MappingSpec, int] | None] | None:
    """The meeting, its insights (`stored_insights`) and its org's current mapping
    (`current_mapping`) in one statement; None when the meeting is gone."""
    one, each = aliased(InsightRecord), aliased(MappingVersion)
    insight = (
        select(one.id)
        .where(one.meeting_id == Meeting.id)
        .order_by((one.cache_key == key).desc(), one.id.desc())
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
    loaded = session.execute(
        select(Meeting, InsightRecord, MappingVersion)
        .select_from(Meeting)
        .outerjoin(InsightRecord, InsightRecord.id == insight)
        .outerjoin(MappingVersion, MappingVersion.id == latest)
        .where(Meeting.id == meeting_id)
    ).first()
    if loaded is None:
        return None
    meeting, record, row = loaded
    return meeting, record, None if row is None else (parsed(row.body), row.version)


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


@dataclass(frozen=True)
class PushOutcome:
    state: PushState
    retry_after: float | None = None
    meeting_id: str | None = None  # of a push that settled its op: whose waiters to wake

    def later(self) -> Later | None:
        """The answer that brings the push back (a turn, a 429, a busy op, a recap's links)."""
        if self.state not in COME_BACK or self.retry_after is None:
            return None
        return Later(max(1, int(self.retry_after * 1000)), self.state)


# what brings a push back later; every other state is final for this delivery (a push
# waiting for linked records is woken by the push that settles the last of them)
COME_BACK = {PushState.QUEUED, PushState.THROTTLED, PushState.BUSY}
# what may let an op that waits for this one go
SETTLING = {PushState.DONE, PushState.FAILED, PushState.DEAD, PushState.PAUSED}


def _ready(session: Session, row: OpRecord, connection: Connection | None) -> PushOutcome | Op:
    """The op to write, linked records filled in; or why there is nothing to write now."""
    if connection is not None and connection.status == ConnectionStatus.PAUSED:
        if not ledger.leased(row, time.time()):
            reason = f"connection paused: {connection.status_reason}"
            ledger.mark_resting(row, OpState.PAUSED, reason)
        return PushOutcome(PushState.PAUSED, meeting_id=row.meeting_id)
    # a recap that links other ops' records waits until those have settled
    ready = enrich.linked(session, ledger.to_op(row))
    if ready is None:
        # not sent again: the push that settles its last dependency wakes it
        return PushOutcome(PushState.WAITING)
    return ready


def push(runtime: Runtime, key: str, turn: Callable[[], bool] = lambda: True) -> PushOutcome:
    """Apply one op at most once: claim it, find() what is in doubt, write, record.

    The op row is read once. `turn` is asked only when there is something to write, so a
    push answered without the provider (settled, paused, waiting) spends no throttle turn.
    """
    retry = runtime.settings.retry
    with runtime.session() as session:
        # one statement for both; `connection` is held here because the session's identity
        # map keeps an object only while someone does, and building the connector looks the
        # same row up again
        loaded = session.execute(
            select(OpRecord, Connection)
            .outerjoin(Connection, Connection.name == OpRecord.connection)
            .where(OpRecord.key == key)
        ).first()
        if loaded is None:
            raise MeetingGone(key)
        row, connection = loaded
        if (state := ledger.settled(row)) is not None:
            return PushOutcome(PushState(state))
        ready = _ready(session, row, connection)
        if isinstance(ready, PushOutcome):
            return ready
        if not turn():
            return PushOutcome(PushState.QUEUED, retry_after=0.0)
        # built before the claim commits: the connection row read with the op is still loaded
        # measured and logged: latency, errors by class (workers.instrumented)
        connector = Instrumented(
            runtime.connectors.get(session, row.connection, org_id=row.org_id), row.connection
        )
        claimed = ledger.claim(session, row, retry.lease_s, time.time())
        if isinstance(claimed, OpState):
            return PushOutcome(PushState(claimed))
        if isinstance(claimed, ledger.Busy):
            wait = min(claimed.wait_s, retry.busy_backoff_ms / 1000)
            return PushOutcome(PushState.BUSY, retry_after=max(wait, 0.2))
    # the claim is committed: from here a crash leaves the op in doubt, never unknown
    op, prior, attempt = ready, claimed.prior, claimed.attempt
    try:
        if claimed.in_doubt and prior is None:
            found = connector.find(op)
            if found is not None:
                prior = found
                _while_held(runtime, key, attempt, ledger.found(found))
        if (
            prior is not None
            and claimed.in_doubt
            and prior.extra.get("payload_hash") == op.payload_hash
        ):
            # the write in doubt landed with this very payload: done, without writing again
            receipt = prior
        else:
            receipt = connector.apply(op, prior)
    except RateLimited as exc:
        # left in doubt on purpose: a multi-part write (a long Slack recap) may have
        # landed in part before the 429, so the next attempt runs find() first
        _while_held(runtime, key, attempt, ledger.released(str(exc)))
        return PushOutcome(PushState.THROTTLED, retry_after=exc.retry_after)
    except AuthExpired as exc:
        with runtime.session() as session:
            ledger.while_held(session, key, attempt, ledger.resting(OpState.PAUSED, str(exc)))
            paused = session.get(Connection, op.connection)
            if paused is not None:
                paused.status, paused.status_reason = ConnectionStatus.PAUSED, str(exc)
        return PushOutcome(PushState.PAUSED, meeting_id=op.meeting_id)
    except Permanent as exc:
        _while_held(runtime, key, attempt, ledger.resting(OpState.FAILED, str(exc)))
        return PushOutcome(PushState.FAILED, meeting_id=op.meeting_id)
    except Transient as exc:
        _while_held(runtime, key, attempt, ledger.released(str(exc)))
        raise
    except BaseException:
        with suppress(Exception):  # the lease runs out on its own if the database is away
            _while_held(runtime, key, attempt, ledger.released("push interrupted"))
        raise
    recorded = _record(runtime, key, attempt, receipt, op.payload_hash)
    return PushOutcome(recorded, meeting_id=op.meeting_id)


def _record(runtime: Runtime, key: str, attempt: int, receipt: Receipt, applied: str) -> PushState:
    """Record a landed write, retrying a while if the database is away; done or superseded.

    Giving up leaves the op in doubt until its lease runs out (then find() settles it), so
    a database that comes back within `record_retry_s` spares the op that whole wait.
    """
    retry = runtime.settings.retry
    # past the lease another push may own the op; the conditional write refuses us anyway
    deadline = time.monotonic() + min(retry.record_retry_s, retry.lease_s / 2)
    pause = RECORD_PAUSE_S
    while True:
        try:
            if _while_held(runtime, key, attempt, ledger.done(receipt, applied)):
                return PushState.DONE
            # our lease ran out and another push took over; it finds this write
            log.warning("op %s: attempt %d lost its claim before recording", key, attempt)
            return PushState.SUPERSEDED
        except (OperationalError, InterfaceError, DisconnectionError) as exc:
            if time.monotonic() + pause > deadline:
                raise
            log.warning(
                "op %s: recording its receipt failed, retrying: %s", key, type(exc).__name__
            )
            time.sleep(pause)
            pause = min(pause * 2, RECORD_PAUSE_MAX_S)


def _while_held(runtime: Runtime, key: str, attempt: int, values: dict[str, Any]) -> bool:
    with runtime.session() as session:
        return ledger.while_held(session, key, attempt, values)


def woken(
    runtime: Runtime, key: str, meeting_id: str, backfill: bool | None = None
) -> list[Planned]:
    """The ops that waited for `key` (a recap for its records) and can be pushed now, on
    the lane of `key`'s push (looked up when not known)."""
    with runtime.session() as session:
        waiters = enrich.ready_waiters(session, meeting_id, key)
        if not waiters:
            return []
        if backfill is None:
            meeting = session.get(Meeting, meeting_id)
            backfill = meeting is not None and meeting.source == "backfill"
        return [Planned(w.key, route_of(w, backfill)) for w in waiters]


def give_up(runtime: Runtime, key: str, reason: str) -> str:
    """Retries are exhausted: park the op as a dead letter with the last reason; its meeting."""
    with runtime.session() as session:
        row = _row(session, key)
        if ledger.settled(row) is None and not ledger.leased(row, time.time()):
            ledger.mark_resting(row, OpState.DEAD, reason)
        return row.meeting_id


def record_error(runtime: Runtime, key: str, reason: str) -> None:
    with runtime.session() as session:
        _row(session, key).last_error = reason


def _row(session: Session, key: str) -> OpRecord:
    row = session.get(OpRecord, key)
    if row is None:
        raise MeetingGone(key)
    return row
