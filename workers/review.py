"""Review in the pipeline: hold what a policy says waits, show it in Slack, expire it.

```
plan ─▶ hold(): an op whose destination's `review` has an `approve` field is recorded
        `awaiting_review` with a pending ReviewRequest, and not enqueued
     ─▶ prepare(meeting): read each held op's record (current values, picklists), evaluate
        the policy's conditions; release the ops none of whose conditions hold; resolve the
        approvers; post the review message (a channel, or each approver's DM)
     ─▶ a decision (admin/review.py, from Slack or the admin API) releases or skips the op
     ─▶ refresh(meeting): the message shows who decided what, and links to what was written
     ─▶ expire(meeting): requests past their time are recorded as skipped (a reminder first)
```

Decisions live in `admin/review.py`; the message's blocks in `connectors/slack_review.py`;
policies in `mappings/review.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from connectors.base import Op, TargetSchema
from connectors.errors import ConnectorError
from connectors.slack import SlackConnector
from connectors.slack_review import ReviewSlack, review_message
from extraction.schemas import ActionItem, Insights
from mappings.engine import PlannedOp
from mappings.planner import Plan, current_mapping
from mappings.review import FieldFacts, ReviewPolicy, owner_choices, owner_field, reasons
from mappings.spec import Assignment, Destination, Mapping
from meetsync.db.models import Meeting, OpRecord, ReviewMessage, ReviewRequest
from meetsync.links import meeting_url
from meetsync.models import MeetingOutput
from meetsync.states import OpState, Verdict
from workers import ledger
from workers.runtime import Runtime

log = logging.getLogger(__name__)

DECIDED_RELEASE = {Verdict.APPROVED, Verdict.EDITED, Verdict.NOT_NEEDED}
DECIDED_SKIP = {Verdict.SKIPPED, Verdict.EXPIRED}
REFRESH_S = 1.0  # how soon a message showing a write in flight looks again


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# -- plan: trim and hold ---------------------------------------------------------------
def trimmed(spec: Mapping, planned: Sequence[PlannedOp]) -> list[Op]:
    """The plan's ops without the fields a review policy says meetsync never writes."""
    policies = {d.name: d.review for d in spec.destinations}
    ops: list[Op] = []
    for p in planned:
        policy = policies.get(p.destination)
        dropped = policy.dropped_fields(p.op.fields) if policy else []
        if not dropped:
            ops.append(p.op)
            continue
        fields = {k: v for k, v in p.op.fields.items() if k not in dropped}
        ops.append(
            Op.plan(
                org_id=p.op.org_id,
                meeting_id=p.op.meeting_id,
                connector=p.op.connector,
                connection=p.op.connection,
                action=p.op.action,
                item_key="",
                target=p.op.target,
                fields=fields,
            ).model_copy(update={"key": p.op.key})
        )
    return [op for op in ops if op.fields]


def hold(
    session: Session,
    meeting: Meeting,
    spec: Mapping,
    made: Plan,
    insights: Insights,
    rows: list[OpRecord],
    models: dict[str, str],
    prompts: dict[str, str],
) -> list[OpRecord]:
    """The rows to push now; those a review policy holds wait as `awaiting_review`."""
    by_key = {p.op.key: p for p in made.planned}
    by_name = {d.name: d for d in spec.destinations}
    payload = MeetingOutput.model_validate(meeting.payload)
    to_push: list[OpRecord] = []
    for row in rows:
        planned = by_key.get(row.key)
        dest = by_name.get(planned.destination) if planned else None
        policy = dest.review if dest is not None else None
        which = _which_record(row)
        if policy is None and which is not None:
            policy = ReviewPolicy()  # `rule: ask` asks the host, by DM, unless review says
        if planned is None or dest is None or policy is None:
            to_push.append(row)
            continue
        question = _question(dest, policy, planned, row, payload) or which
        if question is None and not policy.held_fields(row.fields):
            to_push.append(row)
            continue
        earlier = session.scalars(
            select(ReviewRequest).where(
                ReviewRequest.op_key == row.key, ReviewRequest.payload_hash == row.payload_hash
            )
        ).first()
        if earlier is None:
            task = "action_items" if planned.item is not None else "crm_fields"
            proposal = _proposal(dest, policy, planned, row, insights, payload)
            session.add(
                ReviewRequest(
                    org_id=meeting.org_id,
                    meeting_id=meeting.id,
                    kind="change" if question is None else "clarify",
                    op_key=row.key,
                    payload_hash=row.payload_hash,
                    destination=dest.name,
                    proposal=proposal if question is None else proposal | question,
                    model=models.get(task),
                    prompt_version=prompts.get(task),
                )
            )
            row.state = OpState.AWAITING_REVIEW
        elif earlier.state == Verdict.PENDING:
            row.state = OpState.AWAITING_REVIEW
        elif earlier.state in DECIDED_SKIP:
            row.state = OpState.SKIPPED
        elif earlier.state == Verdict.EDITED:
            _keep_edit(row, earlier)
            if row.state == OpState.PLANNED:
                to_push.append(row)
        else:
            to_push.append(row)
    session.flush()
    return to_push


def _question(
    dest: Destination,
    policy: ReviewPolicy,
    planned: PlannedOp,
    row: OpRecord,
    meeting: MeetingOutput,
) -> dict[str, Any] | None:
    """Who owns this item, when the mapping says to ask and the owner is not clear."""
    item = planned.item
    field = owner_field(dest.fields)
    if item is None or policy.ambiguous_owner != "ask" or field is None:
        return None
    choices = owner_choices(item.owner, item.owner_email, item.evidence, meeting.attendees)
    if not choices:
        return None
    return {
        "question": f"Who owns “{item.title}”? The meeting said “{item.owner}”.",
        "choices": choices,
        "field": field,
        "current_owner": row.fields.get(field),
    }


def _which_record(row: OpRecord) -> dict[str, Any] | None:
    """An update whose target says `rule: ask`: which record, asked once the records are read."""
    if row.action != "update" or row.target.get("rule") != "ask" or row.target.get("id"):
        return None
    what = row.target.get("object") or "record"
    return {"question": f"Which {what} is this about?", "choices": [], "lookup": "target.id"}


def _keep_edit(row: OpRecord, request: ReviewRequest) -> None:
    """A re-run plans the extracted value again; what the reviewer wrote stands."""
    edited = request.proposal.get("edited") or {}
    if not edited:
        return
    target = dict(edited.get("target") or row.target)
    ledger.repay(row, target, dict(edited["fields"]), str(edited["payload_hash"]))
    if row.applied_hash == row.payload_hash and row.external_id is not None:
        row.state = OpState.DONE


def _proposal(
    dest: Destination,
    policy: ReviewPolicy,
    planned: PlannedOp,
    row: OpRecord,
    insights: Insights,
    meeting: MeetingOutput,
) -> dict[str, Any]:
    item = planned.item
    fields = []
    for name in policy.held_fields(row.fields):
        fact = _fact_of(dest, name)
        fields.append(
            {
                "name": name,
                "proposed": row.fields[name],
                "confidence": item.confidence if item is not None else None,
                "fact": fact,
            }
        )
    evidence = _evidence(item, fields, insights, meeting)
    return {
        "destination": dest.name,
        "connector": row.connector,
        "object": row.target.get("object") or row.target.get("project") or dest.connector,
        "label": item.title if item is not None else meeting.title,
        "fields": fields,
        "evidence": evidence,
        "approvers": list(policy.approvers),
        "owner_email": item.owner_email if item is not None else None,
        "post_to": policy.post_to,
        "expire_s": policy.expiry_s,
        "remind_s": policy.reminder_s,
        "announced": False,
    }


def _fact_of(dest: Destination, field: str) -> str | None:
    """The CRM fact a field is read from (`crm.stage.value` → stage), for its evidence."""
    value = dest.fields.get(field)
    source = value.source if isinstance(value, Assignment) else None
    if not source:
        return None
    parts = source.removeprefix("insights.").split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "crm" else None


def _evidence(
    item: ActionItem | None,
    fields: list[dict[str, Any]],
    insights: Insights,
    meeting: MeetingOutput,
) -> dict[str, Any]:
    """The quote behind the proposal, with who said it and when (seconds into the meeting)."""
    quote, pointer = None, None
    if item is not None:
        quote = item.evidence
        index = next((i for i, it in enumerate(insights.action_items) if it is item), None)
        pointer = f"/action_items/{index}" if index is not None else None
    else:
        for field in fields:
            fact = (
                getattr(insights.crm, str(field.get("fact")), None) if field.get("fact") else None
            )
            if fact is not None:
                quote, pointer = fact.evidence, f"/crm/{field['fact']}"
                break
    span = insights.evidence.get(pointer or "")
    said = None
    if span is not None and 0 <= span.utterance_index < len(meeting.transcript):
        said = meeting.transcript[span.utterance_index]
    return {
        "quote": quote,
        "speaker": getattr(said, "speaker", None),
        "at": getattr(said, "start", None),
    }


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
        return any(not r.proposal.get("announced") for r in _pending(session, meeting_id))


def prepare(runtime: Runtime, meeting_id: str) -> Prepared:
    """Evaluate each new request against its record, then post or update the review message."""
    released: list[str] = []
    asked = 0
    expire_in: list[float] = []
    remind_in: list[float] = []
    with runtime.session() as session:
        meeting = session.get(Meeting, meeting_id)
        if meeting is None:
            return Prepared([], 0, None, None)
        payload = MeetingOutput.model_validate(meeting.payload)
        for request in _pending(session, meeting_id):
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
        connector = runtime.connectors.get(session, row.connection)
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
        connector = runtime.connectors.get(session, row.connection)
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
    connector = runtime.connectors.get(session, name)
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


def _pending(session: Session, meeting_id: str) -> Sequence[ReviewRequest]:
    return session.scalars(
        select(ReviewRequest)
        .where(ReviewRequest.meeting_id == meeting_id, ReviewRequest.state == Verdict.PENDING)
        .order_by(ReviewRequest.created_at)
    ).all()


# -- refresh: show what was decided and written -----------------------------------------
def refresh(runtime: Runtime, meeting_id: str) -> bool:
    """Post or update the meeting's review messages; True while a released write is in flight."""
    with runtime.session() as session:
        meeting = session.get(Meeting, meeting_id)
        if meeting is None:
            return False
        requests = session.scalars(
            select(ReviewRequest)
            .where(ReviewRequest.meeting_id == meeting_id)
            .order_by(ReviewRequest.created_at)
        ).all()
        states = {
            r.key: r
            for r in session.scalars(
                select(OpRecord).where(OpRecord.key.in_([q.op_key for q in requests if q.op_key]))
            ).all()
        }
        messages = session.scalars(
            select(ReviewMessage).where(ReviewMessage.meeting_id == meeting_id)
        ).all()
        shown = [_shown(q, states.get(q.op_key or "")) for q in requests]
        in_flight = any(
            s["state"] in DECIDED_RELEASE
            and s["op_state"] not in ledger.FINAL
            and s["op_state"] != OpState.SKIPPED
            for s in shown
        )
        about = {
            "id": meeting.id,
            "title": meeting.title,
            "url": meeting_url(runtime.settings, meeting.id),
        }
        for message in messages:
            here = [
                s
                for q, s in zip(requests, shown, strict=True)
                if message.channel in (q.proposal.get("channels") or [])
            ]
            if not here:
                continue
            text, blocks = review_message(about, here)
            connector = runtime.connectors.get(session, message.connection)
            if not isinstance(connector, SlackConnector):
                continue
            slack = ReviewSlack(connector)
            if message.ts is None:
                channel, ts = slack.post(message.channel, text, blocks)
                message.ts = ts
                if channel != message.channel:
                    message.channel = channel
            else:
                slack.update(message.channel, message.ts, text, blocks)
    return in_flight


def _shown(request: ReviewRequest, row: OpRecord | None) -> dict[str, Any]:
    return {
        "id": request.id,
        "kind": request.kind,
        "proposal": request.proposal,
        "state": request.state,
        "decided_by": request.decided_by,
        "decided_at": request.decided_at.strftime("%Y-%m-%d %H:%M UTC")
        if request.decided_at
        else None,
        "answer": (request.proposal.get("answer") or {}).get("label"),
        "op_state": row.state if row is not None else None,
        "written_url": row.url if row is not None and row.state == OpState.DONE else None,
    }


# -- expire and remind -------------------------------------------------------------------
@dataclass(frozen=True)
class Expired:
    """How many requests ran out now, and in how many seconds the next one does."""

    count: int
    next_in_s: float | None


def expire(runtime: Runtime, meeting_id: str) -> Expired:
    """Record requests past their time as skipped (the caller refreshes the message)."""
    now = utcnow()
    expired = 0
    later: list[float] = []
    with runtime.session() as session:
        for request in _pending(session, meeting_id):
            if request.expires_at is None:
                continue
            if request.expires_at > now:
                later.append((request.expires_at - now).total_seconds())
                continue
            hit = session.execute(
                update(ReviewRequest)
                .where(ReviewRequest.id == request.id, ReviewRequest.state == Verdict.PENDING)
                .values(state=Verdict.EXPIRED, decided_at=now, decided_by="expiry")
                .execution_options(synchronize_session=False)
            )
            if hit.rowcount == 1:  # type: ignore[attr-defined]
                skip_op(session, request)
                expired += 1
    return Expired(expired, min(later) if later else None)


def skip_op(session: Session, request: ReviewRequest) -> bool:
    """The held op will never be written (as it stands): `skipped` in the ledger."""
    hit = session.execute(
        update(OpRecord)
        .where(
            OpRecord.key == request.op_key,
            OpRecord.state == OpState.AWAITING_REVIEW,
            OpRecord.payload_hash == request.payload_hash,
        )
        .values(state=OpState.SKIPPED, last_error=f"review {request.state}")
        .execution_options(synchronize_session=False)
    )
    return bool(hit.rowcount == 1)  # type: ignore[attr-defined]


def remind(runtime: Runtime, meeting_id: str) -> int:
    """One reminder in each review message's thread while requests still wait; how many."""
    now = utcnow()
    sent = 0
    with runtime.session() as session:
        waiting = [r for r in _pending(session, meeting_id) if r.reminded_at is None]
        if not waiting:
            return 0
        users = sorted({u for r in waiting for u in (r.approvers or {}).get("slack_ids", [])})
        for r in waiting:
            r.reminded_at = now
        messages = session.scalars(
            select(ReviewMessage).where(
                ReviewMessage.meeting_id == meeting_id, ReviewMessage.ts.is_not(None)
            )
        ).all()
        for message in messages:
            connector = runtime.connectors.get(session, message.connection)
            if isinstance(connector, SlackConnector) and message.ts:
                mention = " ".join(f"<@{u}>" for u in users)
                ReviewSlack(connector).reply(
                    message.channel,
                    message.ts,
                    f"{mention} {len(waiting)} change(s) still wait for review; "
                    "unanswered ones are skipped when they expire.",
                )
                sent += 1
    return sent
