"""Review in the pipeline, the plan's side: hold what a policy says waits.

```
plan ─▶ hold(): an op whose destination's `review` has an `approve` field (or an unclear
        owner, or `rule: ask` over several records) is recorded `awaiting_review` with a
        pending ReviewRequest, and not enqueued
     ─▶ prepare(meeting) (workers/review_ask.py): read each held op's record, evaluate the
        conditions, release what needs nobody, resolve the approvers, route the message
     ─▶ a decision (admin/review.py, from Slack or the admin API) releases or skips the op
     ─▶ refresh / expire / remind (workers/review_message.py): the message shows who decided
        what and links to what was written; overdue requests are recorded as skipped
```

The message's blocks live in `connectors/slack_review.py`; policies in `mappings/review.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from extraction.schemas import ActionItem, Insights
from mappings.engine import PlannedOp
from mappings.planner import Plan
from mappings.review import ReviewPolicy, owner_choices, owner_field
from mappings.spec import Assignment, Destination, Mapping
from meetsync.db.models import Meeting, OpRecord, ReviewRequest
from meetsync.models import MeetingOutput
from meetsync.states import OpState, Verdict
from workers import ledger

DECIDED_RELEASE = {Verdict.APPROVED, Verdict.EDITED, Verdict.NOT_NEEDED}
DECIDED_SKIP = {Verdict.SKIPPED, Verdict.EXPIRED}


def utcnow() -> datetime:
    """Naive UTC, as the database's DateTime columns hold it."""
    return datetime.now(UTC).replace(tzinfo=None)


def pending(session: Session, meeting_id: str) -> Sequence[ReviewRequest]:
    """The meeting's requests nobody has decided yet, oldest first."""
    return session.scalars(_pending(), {"meeting_id": meeting_id}).all()


@cache
def _pending() -> Select[ReviewRequest]:
    """`pending`'s statement (asked for every meeting planned), built once
    (meetsync/db/session.py)."""
    return (
        select(ReviewRequest)
        .where(
            ReviewRequest.meeting_id == bindparam("meeting_id"),
            ReviewRequest.state == Verdict.PENDING,
        )
        .order_by(ReviewRequest.created_at)
    )


# -- plan: trim and hold ---------------------------------------------------------------
def hold(
    session: Session,
    meeting: Meeting,
    spec: Mapping,
    made: Plan,
    insights: Insights,
    rows: list[OpRecord],
    models: dict[str, str],
    prompts: dict[str, str],
    payload: MeetingOutput | None = None,
) -> list[OpRecord]:
    """The rows to push now; those a review policy holds wait as `awaiting_review`
    (`payload`: the meeting's stored payload, when the caller has validated it already)."""
    by_key = {p.op.key: p for p in made.planned}
    by_name = {d.name: d for d in spec.destinations}
    payload = payload or MeetingOutput.model_validate(meeting.payload)
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
        # what an edited owner teaches memory: the name said, the field that holds it
        "owner": item.owner if item is not None else None,
        "owner_field": owner_field(dest.fields),
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
