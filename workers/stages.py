"""The pipeline's stages as plain functions of what is stored plus one call outward."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from extraction.extract import extract_insights
from mappings.engine import plan_ops
from mappings.loader import load_mapping
from sqlalchemy import select

from connectors.base import stable_hash
from connectors.errors import AuthExpired, Permanent, RateLimited
from extraction.schemas import Insights
from meetsync.db.models import Connection, InsightRecord, MappingVersion, Meeting, OpRecord, Org
from meetsync.models import MeetingOutput
from workers import ledger
from workers.runtime import Runtime

log = logging.getLogger(__name__)


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
        record = session.scalars(
            select(InsightRecord)
            .where(InsightRecord.meeting_id == meeting_id)
            .order_by(InsightRecord.id.desc())
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
        ops = plan_ops(
            MeetingOutput.model_validate(meeting.payload),
            Insights.model_validate(record.insights),
            mapping,
            meeting_url=f"{runtime.settings.public_base_url}/v1/meetings/{meeting.id}",
        )
        rows = ledger.record_plan(session, meeting_id, ops, mapping_row.version)
        meeting.status = "planned"
        return [Planned(row.key, row.connector) for row in rows]


@dataclass(frozen=True)
class PushOutcome:
    state: str
    retry_after: float | None = None


def push(runtime: Runtime, key: str) -> PushOutcome:
    """Apply one op at most once: find() what is in doubt, then write, then record."""
    with runtime.session() as session:
        row = session.get(OpRecord, key)
        if row is None:
            raise MeetingGone(key)
        if row.state == "done" and row.applied_hash == row.payload_hash:
            return PushOutcome("done")
        if row.state in ledger.RESTING:
            return PushOutcome(row.state)
        connection = session.get(Connection, row.connection)
        if connection is not None and connection.status == "paused":
            ledger.mark_resting(row, "paused", f"connection paused: {connection.status_reason}")
            return PushOutcome("paused")
        connector = runtime.connectors.get(session, row.connection)
        op, prior, in_doubt = ledger.to_op(row), ledger.prior_receipt(row), row.state == "sending"
    try:
        if in_doubt and prior is None:
            found = connector.find(op)
            if found is not None:
                prior = found
                with runtime.session() as session:
                    ledger.mark_found(_row(session, key), found)
        with runtime.session() as session:
            ledger.mark_sending(_row(session, key))
        receipt = connector.apply(op, prior)
    except RateLimited as exc:
        with runtime.session() as session:
            # left in doubt on purpose: a multi-part write (a long Slack recap) may have
            # landed in part before the 429, so the next attempt runs find() first
            _row(session, key).last_error = str(exc)
        return PushOutcome("throttled", retry_after=exc.retry_after)
    except AuthExpired as exc:
        with runtime.session() as session:
            ledger.mark_resting(_row(session, key), "paused", str(exc))
            connection = session.get(Connection, op.connection)
            if connection is not None:
                connection.status, connection.status_reason = "paused", str(exc)
        return PushOutcome("paused")
    except Permanent as exc:
        with runtime.session() as session:
            ledger.mark_resting(_row(session, key), "failed", str(exc))
        return PushOutcome("failed")
    with runtime.session() as session:
        ledger.mark_done(_row(session, key), receipt, op.payload_hash)
    return PushOutcome("done")


def give_up(runtime: Runtime, key: str, reason: str) -> None:
    """Retries are exhausted: park the op as a dead letter with the last reason."""
    with runtime.session() as session:
        ledger.mark_resting(_row(session, key), "dead", reason)


def record_error(runtime: Runtime, key: str, reason: str) -> None:
    with runtime.session() as session:
        _row(session, key).last_error = reason


def _row(session, key: str) -> OpRecord:  # type: ignore[no-untyped-def]
    row = session.get(OpRecord, key)
    if row is None:
        raise MeetingGone(key)
    return row
