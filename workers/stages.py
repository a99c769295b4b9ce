"""The pipeline's stages as plain functions of what is stored plus one call outward."""

from __future__ import annotations

import logging
import time
from contextlib import suppress
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from connectors.base import Op, Receipt, stable_hash
from connectors.errors import AuthExpired, Permanent, RateLimited, Transient
from extraction.extract import extract_insights
from extraction.schemas import Insights
from mappings import identity
from mappings.engine import PlannedOp, plan_items
from mappings.loader import load_mapping
from meetsync.db.models import Connection, InsightRecord, MappingVersion, Meeting, OpRecord, Org
from meetsync.links import meeting_link
from meetsync.models import MeetingOutput
from meetsync.transcripts import with_transcript
from workers import enrich, ledger
from workers.closing import close_fields, finishing
from workers.runtime import Runtime

log = logging.getLogger(__name__)

RECORD_PAUSE_S = 0.1  # first wait before recording a receipt again; doubles up to the max
RECORD_PAUSE_MAX_S = 2.0


class MeetingGone(LookupError):
    """The message names a meeting or op that no longer exists."""


def extraction_key(runtime: Runtime, meeting: Meeting, profile: dict) -> str:
    """Same transcript, models, prompts and profile → same insights: no new LLM call."""
    llm = runtime.settings.llm
    return stable_hash([meeting.transcript_hash, llm.models, llm.prompt_versions, profile])


def extract(runtime: Runtime, meeting_id: str) -> bool:
    """Extract insights for a meeting; False when cached insights already cover it."""
    with runtime.session() as session:
        meeting = session.get(Meeting, meeting_id)
        if meeting is None:
            raise MeetingGone(meeting_id)
        org = session.get(Org, meeting.org_id)
        profile = dict(org.profile) if org else {}
        key = extraction_key(runtime, meeting, profile)
        cached = session.scalars(
            select(InsightRecord).where(
                InsightRecord.meeting_id == meeting_id, InsightRecord.cache_key == key
            )
        ).first()
        if cached is not None:
            meeting.status = "extracted"
            return False
        payload = MeetingOutput.model_validate(meeting.payload)
        revision = meeting.revision
        meeting.status = "extracting"
    # a transcript sent as a URL is fetched here, not in the webhook (meetsync/transcripts.py)
    payload = with_transcript(payload, runtime.settings.transcript_fetch)
    result = extract_insights(payload, settings=runtime.settings.llm, org_profile=profile)
    with runtime.session() as session:
        session.add(
            InsightRecord(
                meeting_id=meeting_id,
                revision=revision,
                cache_key=key,
                insights=result.insights.model_dump(mode="json"),
                usage=[u.model_dump(mode="json") for u in result.usage],
            )
        )
        meeting = session.get(Meeting, meeting_id)
        if meeting is not None:
            meeting.status = "extracted"
    return True


def fail_meeting(runtime: Runtime, meeting_id: str, reason: str) -> None:
    with runtime.session() as session:
        meeting = session.get(Meeting, meeting_id)
        if meeting is not None:
            meeting.status, meeting.error = "failed", reason


@dataclass(frozen=True)
class Planned:
    key: str
    connector: str


def plan(runtime: Runtime, meeting_id: str) -> list[Planned]:
    """Render the latest insights through the org's mapping into ledger rows to push."""
    with runtime.session() as session:
        meeting = session.get(Meeting, meeting_id)
        if meeting is None:
            raise MeetingGone(meeting_id)
        org = session.get(Org, meeting.org_id)
        current = extraction_key(runtime, meeting, dict(org.profile) if org else {})
        # the insights of the stored revision: a transcript edited back to an earlier
        # version hits the extraction cache, so its record is not the newest one
        record = session.scalars(
            select(InsightRecord)
            .where(InsightRecord.meeting_id == meeting_id)
            .order_by((InsightRecord.cache_key == current).desc(), InsightRecord.id.desc())
            .limit(1)
        ).first()
        mapping_row = session.scalars(
            select(MappingVersion)
            .where(MappingVersion.org_id == meeting.org_id)
            .order_by(MappingVersion.version.desc())
            .limit(1)
        ).first()
        if record is None or mapping_row is None:
            meeting.status = "failed"
            meeting.error = "no insights" if record is None else "org has no mapping"
            return []
        mapping = load_mapping(mapping_row.body)
        output = MeetingOutput.model_validate(meeting.payload)
        insights = Insights.model_validate(record.insights)
        url = meeting_link(runtime.settings, meeting.id)

        def planned(renames: dict[str, str] | None = None) -> list[PlannedOp]:
            made = plan_items(output, insights, mapping, meeting_url=url, renames=renames)
            if meeting.connectors:  # a backfill limited to some providers (--providers)
                made = [p for p in made if p.op.connector in meeting.connectors]
            return made

        made = planned()
        existing = session.scalars(select(OpRecord).where(OpRecord.meeting_id == meeting_id)).all()
        renames = identity.match(identity.identities(made), existing)
        if renames:
            # a re-worded item keeps the key of what was written for it (the write becomes an
            # update); planned again so whatever links it (a recap) names that key too
            made = planned(renames)
        ops = [p.op for p in made]
        idents = {k: ident.as_json() for k, ident in identity.identities(made).items()}
        rows = ledger.record_plan(session, meeting_id, ops, mapping_row.version, idents)
        policies: dict[str, str] = {d.name: d.on_missing for d in mapping.destinations}
        gone = identity.missing(existing, {op.key for op in ops})
        rows += _settle_missing(meeting, gone, policies)
        meeting.status = "planned"
        return [Planned(row.key, row.connector) for row in rows]


def _settle_missing(
    meeting: Meeting, gone: list[OpRecord], policies: dict[str, str]
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
            row.disposition = "closed"
            if row.state not in ledger.RESTING:
                to_push.append(row)
        else:
            row.disposition = "missing"
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
    state: str
    retry_after: float | None = None


def precheck(runtime: Runtime, key: str) -> PushOutcome | None:
    """What a push answers without the provider (settled, paused, waiting for linked
    records), or None when it needs the provider. Asked before the throttle, so a recap
    polling for its links or a duplicate delivery spends no token of anyone's turn."""
    with runtime.session() as session:
        ready = _ready(session, _row(session, key))
    return ready if isinstance(ready, PushOutcome) else None


def _ready(session: Session, row: OpRecord) -> PushOutcome | Op:
    """The op to write, linked records filled in; or why there is nothing to write now."""
    if (state := ledger.settled(row)) is not None:
        return PushOutcome(state)
    connection = session.get(Connection, row.connection)
    if connection is not None and connection.status == "paused":
        if not ledger.leased(row, time.time()):
            ledger.mark_resting(row, "paused", f"connection paused: {connection.status_reason}")
        return PushOutcome("paused")
    # a recap that links other ops' records waits until those have settled
    ready = enrich.linked(session, ledger.to_op(row))
    if ready is None:
        return PushOutcome("waiting", retry_after=enrich.WAIT_SECONDS)
    return ready


def push(runtime: Runtime, key: str) -> PushOutcome:
    """Apply one op at most once: claim it, find() what is in doubt, write, record."""
    retry = runtime.settings.retry
    with runtime.session() as session:
        row = _row(session, key)
        ready = _ready(session, row)
        if isinstance(ready, PushOutcome):
            return ready
        claimed = ledger.claim(session, row, retry.lease_s, time.time())
        if isinstance(claimed, str):
            return PushOutcome(claimed)
        if isinstance(claimed, ledger.Busy):
            wait = min(claimed.wait_s, retry.busy_backoff_ms / 1000)
            return PushOutcome("busy", retry_after=max(wait, 0.2))
        connector = runtime.connectors.get(session, row.connection, org_id=row.org_id)
    # the claim is committed: from here a crash leaves the op in doubt, never unknown
    op, prior, attempt = ready, claimed.prior, claimed.attempt
    try:
        if claimed.in_doubt and prior is None:
            found = connector.find(op)
            if found is not None:
                prior = found
                with runtime.session() as session:
                    row = _row(session, key)
                    if ledger.holds(row, attempt):
                        ledger.record_found(row, found)
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
        _release(runtime, key, attempt, str(exc))
        return PushOutcome("throttled", retry_after=exc.retry_after)
    except AuthExpired as exc:
        with runtime.session() as session:
            row = _row(session, key)
            if ledger.holds(row, attempt):
                ledger.mark_resting(row, "paused", str(exc))
            connection = session.get(Connection, op.connection)
            if connection is not None:
                connection.status, connection.status_reason = "paused", str(exc)
        return PushOutcome("paused")
    except Permanent as exc:
        with runtime.session() as session:
            row = _row(session, key)
            if ledger.holds(row, attempt):
                ledger.mark_resting(row, "failed", str(exc))
        return PushOutcome("failed")
    except Transient as exc:
        _release(runtime, key, attempt, str(exc))
        raise
    except BaseException:
        with suppress(Exception):  # the lease runs out on its own if the database is away
            _release(runtime, key, attempt, "push interrupted")
        raise
    return PushOutcome(_record(runtime, key, attempt, receipt, op.payload_hash))


def _record(runtime: Runtime, key: str, attempt: int, receipt: Receipt, applied: str) -> str:
    """Record a landed write, retrying a while if the database is away; `done` or `superseded`.

    Giving up leaves the op in doubt until its lease runs out (then find() settles it), so
    a database that comes back within `record_retry_s` spares the op that whole wait.
    """
    retry = runtime.settings.retry
    # past the lease another push may own the op; holds() below would refuse us anyway
    deadline = time.monotonic() + min(retry.record_retry_s, retry.lease_s / 2)
    pause = RECORD_PAUSE_S
    while True:
        try:
            with runtime.session() as session:
                held = session.get(OpRecord, key, with_for_update=True)
                if held is None or not ledger.holds(held, attempt):
                    # our lease ran out and another push took over; it finds this write
                    log.warning("op %s: attempt %d lost its claim before recording", key, attempt)
                    return "superseded"
                ledger.mark_done(held, receipt, applied)
            return "done"
        except (OperationalError, InterfaceError, DisconnectionError) as exc:
            if time.monotonic() + pause > deadline:
                raise
            log.warning(
                "op %s: recording its receipt failed, retrying: %s", key, type(exc).__name__
            )
            time.sleep(pause)
            pause = min(pause * 2, RECORD_PAUSE_MAX_S)


def _release(runtime: Runtime, key: str, attempt: int, reason: str) -> None:
    with runtime.session() as session:
        row = _row(session, key)
        if ledger.holds(row, attempt):
            ledger.release(row, reason)


def give_up(runtime: Runtime, key: str, reason: str) -> None:
    """Retries are exhausted: park the op as a dead letter with the last reason."""
    with runtime.session() as session:
        row = _row(session, key)
        if ledger.settled(row) is None and not ledger.leased(row, time.time()):
            ledger.mark_resting(row, "dead", reason)


def record_error(runtime: Runtime, key: str, reason: str) -> None:
    with runtime.session() as session:
        _row(session, key).last_error = reason


def _row(session: Session, key: str) -> OpRecord:
    row = session.get(OpRecord, key)
    if row is None:
        raise MeetingGone(key)
    return row
