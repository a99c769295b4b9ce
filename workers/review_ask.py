"""Review in the pipeline, asking: read the held ops' records, then ask the right people.

`prepare(meeting)` fills in each new request's current values, picklists and record link,
evaluates the policy's conditions (an op none of whose conditions hold is released
unasked), looks up the records a `rule: ask` target could mean, resolves the approvers to
Slack users and routes the request to a channel or their DMs. The review actors post the
message afterwards (workers/review_message.py), so a Slack error retries the post only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.base import TargetSchema
from connectors.errors import ConnectorError
from connectors.slack import SlackConnector
from connectors.slack_review import ReviewSlack
from mappings.planner import current_mapping
from mappings.review import FieldFacts, ReviewPolicy, reasons
from meetsync.db.models import Meeting, OpRecord, ReviewMessage
from meetsync.models import MeetingOutput
from meetsync.states import OpState, Verdict
from workers import ledger
from workers.review import pending, utcnow
from workers.runtime import Runtime

log = logging.getLogger(__name__)


# -- prepare: read the records, ask the approvers --------------------------------------
@dataclass(frozen=True)
class Prepared:
    """What `prepare` did: ops released unasked, requests asked (the caller posts the
    message, so a Slack error retries the post, not the evaluation), when to expire or remind."""

    released: list[str]
    asked: int
    expire_in_s: float | None
    remind_in_s: float | None


def unannounced(runtime: Runtime, meeting_id: str) -> bool:
    """Whether the meeting has pending requests no review message shows yet."""
    with runtime.session() as session:
        return any(not r.proposal.get("announced") for r in pending(session, meeting_id))


def prepare(runtime: Runtime, meeting_id: str) -> Prepared:
    """Evaluate each new request against its record; release it, or route it to its approvers."""
    released: list[str] = []
    asked = 0
    expire_in: list[float] = []
    remind_in: list[float] = []
    with runtime.session() as session:
        meeting = session.get(Meeting, meeting_id)
        if meeting is None:
            return Prepared([], 0, None, None)
        payload = MeetingOutput.model_validate(meeting.payload)
        for request in pending(session, meeting_id):
            if request.proposal.get("announced"):
                continue
            row = session.get(OpRecord, request.op_key) if request.op_key else None
            if row is None:
                continue
            proposal = dict(request.proposal)
            if proposal.get("lookup"):
                proposal["choices"] = _candidates(runtime, session, row)
                proposal["question"] = (
                    f"Which {row.target.get('object') or 'record'} is "
                    f"“{payload.title}” about? Several match."
                )
            one_record = proposal.get("lookup") and len(proposal["choices"]) < 2
            if one_record or (
                request.kind == "change" and not _still_asks(runtime, session, row, proposal)
            ):
                request.state, request.decided_by = Verdict.NOT_NEEDED, "policy"
                request.decided_at = utcnow()
                _release(row)
                released.append(row.key)
                proposal["announced"] = True
                request.proposal = proposal
                continue
            emails, users = _approvers(runtime, session, row, proposal, payload)
            request.approvers = {"emails": emails, "slack_ids": users}
            proposal["announced"] = True
            proposal["channels"] = _route(session, runtime, meeting, proposal, users)
            if not users or not proposal["channels"]:
                # nobody to ask in Slack: the admin API can still decide, or it expires
                log.warning(
                    "review of op %s: no approver found in Slack (%s)", row.key, emails or "none"
                )
            request.proposal = proposal
            request.expires_at = utcnow() + timedelta(seconds=float(proposal["expire_s"]))
            expire_in.append(float(proposal["expire_s"]))
            if proposal.get("remind_s"):
                remind_in.append(float(proposal["remind_s"]))
            asked += 1
    return Prepared(
        released,
        asked,
        min(expire_in) if expire_in else None,
        min(remind_in) if remind_in else None,
    )


def _still_asks(
    runtime: Runtime, session: Session, row: OpRecord, proposal: dict[str, Any]
) -> bool:
    """Fill in current values and reasons; whether any held field still needs a person."""
    policy = _policy(session, row.org_id, str(proposal["destination"]))
    op = ledger.to_op(row)
    current: dict[str, Any] | None = None
    schema: TargetSchema | None = None
    try:
        connector = runtime.connectors.get(session, row.connection, org_id=row.org_id)
        read = getattr(connector, "current_values", None)
        current = read(op) if read is not None else None
        schema = connector.describe(op.target)
        where = getattr(connector, "record_url", None)
        proposal["record_url"] = where(op) if where is not None else None
        if "record_owner" in (proposal.get("approvers") or []):
            owner = getattr(connector, "record_owner_email", None)
            proposal["record_owner_email"] = owner(op) if owner is not None else None
    except ConnectorError as exc:
        # the record cannot be read (no match yet): ask, rather than write unseen
        log.info("review of op %s: record not read: %s", row.key, exc)
    asks = False
    for field in proposal["fields"]:
        facts = schema.field(field["name"]) if schema is not None else None
        field["current"] = (current or {}).get(field["name"])
        field["reasons"] = (
            reasons(
                policy,
                FieldFacts(
                    name=field["name"],
                    proposed=field["proposed"],
                    current=field["current"],
                    confidence=field.get("confidence"),
                    picklist=tuple(facts.picklist or ()) if facts is not None else (),
                ),
            )
            if policy is not None
            else ["approval required"]
        )
        field["unchanged"] = (
            field["current"] is not None
            and not field["reasons"]
            and (str(field["current"]) == str(field["proposed"]))
        )
        asks |= bool(field["reasons"])
    return asks


def _candidates(runtime: Runtime, session: Session, row: OpRecord) -> list[dict[str, str]]:
    """The records an op's target could mean (the connector's `candidates`), or []."""
    try:
        connector = runtime.connectors.get(session, row.connection, org_id=row.org_id)
        found = getattr(connector, "candidates", None)
        return list(found(ledger.to_op(row))) if found is not None else []
    except ConnectorError as exc:
        log.info("review of op %s: candidates not read: %s", row.key, exc)
        return []


def _policy(session: Session, org_id: str, destination: str) -> ReviewPolicy | None:
    mapping = current_mapping(session, org_id)
    if mapping is None:
        return None
    dest = next((d for d in mapping[0].destinations if d.name == destination), None)
    return dest.review if dest is not None else None


def _approvers(
    runtime: Runtime,
    session: Session,
    row: OpRecord,
    proposal: dict[str, Any],
    meeting: MeetingOutput,
) -> tuple[list[str], list[str]]:
    """(emails, Slack user ids) of the people allowed to decide."""
    emails: list[str] = []
    groups: list[str] = []
    host = next((a.email for a in meeting.attendees if a.internal and a.email), None)
    for who in proposal.get("approvers") or ["host"]:
        if who == "host" and host:
            emails.append(host)
        elif who == "item_owner" and proposal.get("owner_email"):
            emails.append(str(proposal["owner_email"]))
        elif who == "record_owner" and proposal.get("record_owner_email"):
            emails.append(str(proposal["record_owner_email"]))
        elif who.startswith("@"):
            groups.append(who)
        elif "@" in who:
            emails.append(who)
    emails = list(dict.fromkeys(e.lower() for e in emails))
    slack = _slack(runtime, session, row.org_id)
    users: list[str] = []
    if slack is not None:
        users = [u for u in (slack.user_id(e) for e in emails) if u]
        for group in groups:
            try:
                users += slack.group_members(group)
            except ConnectorError as exc:
                log.warning("review: user group %s not read: %s", group, exc)
    return emails, list(dict.fromkeys(users))


def _slack(runtime: Runtime, session: Session, org_id: str) -> ReviewSlack | None:
    name = _slack_connection(session, org_id)
    if name is None:
        return None
    connector = runtime.connectors.get(session, name, org_id=org_id)
    return ReviewSlack(connector) if isinstance(connector, SlackConnector) else None


def _slack_connection(session: Session, org_id: str) -> str | None:
    mapping = current_mapping(session, org_id)
    return mapping[0].connections.get("slack") if mapping is not None else None


def _route(
    session: Session,
    runtime: Runtime,
    meeting: Meeting,
    proposal: dict[str, Any],
    users: list[str],
) -> list[str]:
    """The channels showing this request, each with its review message row."""
    post_to = str(proposal.get("post_to") or "dm")
    connection = _slack_connection(session, meeting.org_id)
    if connection is None:
        return []
    channels: list[str] = []
    if post_to != "dm":
        channels = [post_to]
    else:
        slack = _slack(runtime, session, meeting.org_id)
        if slack is not None:
            channels = [slack.dm_channel(u) for u in users]
    for channel in channels:
        exists = session.scalars(
            select(ReviewMessage).where(
                ReviewMessage.meeting_id == meeting.id, ReviewMessage.channel == channel
            )
        ).first()
        if exists is None:
            session.add(
                ReviewMessage(
                    org_id=meeting.org_id,
                    meeting_id=meeting.id,
                    connection=connection,
                    channel=channel,
                )
            )
            session.flush()
    return channels


def _release(row: OpRecord) -> None:
    if row.state == OpState.AWAITING_REVIEW:
        row.state = OpState.PLANNED
