"""Review decisions: approve, edit, skip, approve all, and ratings, from Slack or the admin API.

A decision is two conditional UPDATEs in one transaction: the request `pending → verdict`
and its op `awaiting_review → planned | skipped` (for the payload the person saw). Whoever
comes second (a double click, Slack's retry, a second approver, the expiry) changes
nothing and is told what was decided already. Released ops are pushed by the caller
(`Decided.release`, enqueued by `follow_up`), through the ledger, which writes each at
most once. An edit also teaches org memory (admin/learning.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from admin import learning
from admin.connections import build_connector
from connectors.base import TargetSchema, payload_hash
from connectors.errors import ConnectorError
from connectors.slack import SlackConnector
from connectors.slack_review import (
    FIELD_BLOCK,
    ReviewSlack,
    check_edits,
    edit_view,
    respond,
    submitted_values,
)
from meetsync.db.models import OpRecord, ReviewMessage, ReviewRequest
from meetsync.db.session import session_scope
from meetsync.settings import Settings
from meetsync.states import OpState, Verdict

Choice = Literal["approve", "skip"]
# SQLite's busy handler backs off in sleeps of up to 100 ms when two connections want to
# write at once, which is most of a decision's tail latency under load: on SQLite (the
# embedded default) this process's decisions take turns instead. PostgreSQL needs no turns.
_SQLITE_TURN = threading.Lock()


@dataclass(frozen=True)
class Reviewer:
    """Who is deciding: a Slack user (by id), a person by email, or an org admin."""

    slack_id: str | None = None
    email: str | None = None
    admin: bool = False

    @property
    def label(self) -> str:
        return self.slack_id or self.email or "admin"


@dataclass(frozen=True)
class Decided:
    """The answer to a decision: whether it counted, what to tell the person, what to push."""

    ok: bool
    message: str
    meeting_id: str | None = None
    release: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # Edit modal: block id → error


@dataclass(frozen=True)
class EditField:
    """One field of an Edit form: its proposed value and, for a picklist, the choices."""

    name: str
    proposed: Any
    choices: tuple[str, ...] = ()

    @property
    def block(self) -> str:
        """The key of this field's error in `Decided.errors`."""
        return f"{FIELD_BLOCK}{self.name}"


class _Conflict(Exception):
    """The second of two decisions: roll back whatever the first half changed."""


def decide(settings: Settings, request_id: str, choice: Choice, who: Reviewer) -> Decided:
    """Approve (release to push) or skip (never write) one held op."""
    verdict = Verdict.APPROVED if choice == "approve" else Verdict.SKIPPED
    try:
        with _writing(settings) as session:
            request = session.get(ReviewRequest, request_id)
            refusal = _refusal(request, who)
            if refusal is not None:
                return refusal
            assert request is not None
            if verdict == Verdict.APPROVED and request.proposal.get("lookup"):
                return Decided(False, "Pick one of the records first.", request.meeting_id)
            return _record(session, request, verdict, who)
    except _Conflict as exc:
        return Decided(False, str(exc))


def approve_all(settings: Settings, meeting_id: str, who: Reviewer) -> Decided:
    """Approve every pending request of a meeting this person may decide."""
    released: list[str] = []
    count = 0
    with session_scope(settings.database_url) as session:
        pending = session.scalars(
            select(ReviewRequest.id).where(
                ReviewRequest.meeting_id == meeting_id,
                ReviewRequest.state == Verdict.PENDING,
                ReviewRequest.kind == "change",  # a question needs its own answer
            )
        ).all()
    for request_id in pending:
        done = decide(settings, request_id, "approve", who)
        if done.ok:
            released += done.release
            count += 1
    if not count:
        return Decided(False, "Nothing here waits for your approval.", meeting_id)
    return Decided(True, f"Approved {count} change(s).", meeting_id, released)


def edit(settings: Settings, request_id: str, values: dict[str, Any], who: Reviewer) -> Decided:
    """Write the person's values instead of the proposal, once the provider would take them."""
    try:
        with session_scope(settings.database_url) as session:
            request = session.get(ReviewRequest, request_id)
            refusal = _refusal(request, who)
            if refusal is not None:
                return refusal
            assert request is not None
            if request.kind != "change":  # released without its answer, it would guess
                return Decided(False, "A question is answered, not edited.", request.meeting_id)
            row = session.get(OpRecord, request.op_key or "")
            if row is None:
                return Decided(False, "That change is no longer planned.")
            held = {f["name"] for f in request.proposal.get("fields") or []}
            unknown = sorted(set(values) - held)
            if unknown:
                return Decided(
                    False,
                    "Only the proposed fields can be edited.",
                    errors={f"field:{name}": "not a proposed field" for name in unknown},
                )
            typed, errors = check_edits(values, _schema(session, settings, row))
            if errors:
                return Decided(False, "Some values would be refused.", errors=errors)
            before = {f["name"]: f.get("proposed") for f in request.proposal.get("fields") or []}
            corrections = [
                {"field": k, "before": before.get(k), "after": v, "who": who.label}
                for k, v in typed.items()
                if before.get(k) != v
            ]
            fields = {**row.fields, **typed}
            fields = {k: v for k, v in fields.items() if v is not None}
            edited = {
                "fields": fields,
                "payload_hash": payload_hash(row.action, row.target, fields),
            }
            decided = _record(session, request, Verdict.EDITED, who, edited, corrections)
            # what the edit teaches org memory, in the same transaction as the decision
            learning.learn_from_edit(session, request, row, corrections)
            return decided
    except _Conflict as exc:
        return Decided(False, str(exc))


def answer(settings: Settings, request_id: str, value: str, who: Reviewer) -> Decided:
    """Answer a clarification (who owns an item): the held op takes the answer and goes."""
    try:
        with _writing(settings) as session:
            request = session.get(ReviewRequest, request_id)
            refusal = _refusal(request, who)
            if refusal is not None:
                return refusal
            assert request is not None
            choices = request.proposal.get("choices") or []
            choice = next((c for c in choices if c["value"] == value), None)
            row = session.get(OpRecord, request.op_key or "")
            if request.kind != "clarify" or choice is None or row is None:
                return Decided(False, "That answer is not one of the choices.", request.meeting_id)
            if request.proposal.get("lookup"):  # which record: the target's id
                target, fields, field_name = {**row.target, "id": value}, dict(row.fields), "id"
                before = row.target.get("id")
            else:  # who owns the item: the owner field
                field_name = str(request.proposal["field"])
                target, fields = dict(row.target), {**row.fields, field_name: value}
                before = row.fields.get(field_name)
            edited = {
                "fields": fields,
                "target": target,
                "payload_hash": payload_hash(row.action, target, fields),
            }
            corrections = [
                {"field": field_name, "before": before, "after": value, "who": who.label}
            ]
            return _record(session, request, Verdict.EDITED, who, edited, corrections, choice)
    except _Conflict as exc:
        return Decided(False, str(exc))


def submit_edit(settings: Settings, view: dict[str, Any], who: Reviewer) -> Decided:
    """An Edit modal's submission; a refusal names the field it is about (for the modal)."""
    values = submitted_values(view)
    decided = edit(settings, str(view.get("private_metadata") or ""), values, who)
    if decided.ok or decided.errors:
        return decided
    first = f"{FIELD_BLOCK}{next(iter(values), '')}"
    return Decided(False, decided.message, decided.meeting_id, errors={first: decided.message})


def edit_form(settings: Settings, request_id: str, who: Reviewer) -> dict[str, Any] | Decided:
    """The Edit modal for a request, or why this person cannot edit it."""
    with session_scope(settings.database_url) as session:
        request = session.get(ReviewRequest, request_id)
        refusal = _refusal(request, who)
        if refusal is not None:
            return refusal
        assert request is not None
        if request.kind != "change":
            return Decided(False, "A question is answered, not edited.", request.meeting_id)
        row = session.get(OpRecord, request.op_key or "")
        schema = _schema(session, settings, row) if row is not None else None
        return edit_view({"id": request.id, "proposal": request.proposal}, schema)


def edit_fields(settings: Settings, request_id: str, who: Reviewer) -> list[EditField] | Decided:
    """The Edit modal's fields (prefilled, picklists as choices) for a form outside Slack."""
    form = edit_form(settings, request_id, who)
    if isinstance(form, Decided):
        return form
    found = []
    for block in form["blocks"]:
        element = block["element"]
        if element["type"] == "static_select":
            choices = tuple(o["value"] for o in element["options"])
            value = (element.get("initial_option") or {}).get("value")
        else:
            choices, value = (), element.get("initial_value")
        found.append(EditField(block["block_id"][len(FIELD_BLOCK) :], value, choices))
    return found


def open_edit(settings: Settings, request_id: str, trigger_id: str, who: Reviewer) -> Decided:
    """Open the Edit modal in Slack for the person who clicked Edit."""
    form = edit_form(settings, request_id, who)
    if isinstance(form, Decided):
        return form
    with session_scope(settings.database_url) as session:
        request = session.get(ReviewRequest, request_id)
        slack = _slack_of(session, settings, request.meeting_id if request else "")
    if slack is None:
        return Decided(False, "No Slack connection shows this review.")
    try:
        slack.open_view(trigger_id, form)
    except ConnectorError as exc:
        return Decided(False, f"Slack did not open the form: {exc}")
    return Decided(True, "opened")


def pending(settings: Settings, org_id: str) -> list[dict[str, Any]]:
    """The org's requests still waiting, as the admin API lists them."""
    with session_scope(settings.database_url) as session:
        rows = session.scalars(
            select(ReviewRequest)
            .where(ReviewRequest.org_id == org_id, ReviewRequest.state == Verdict.PENDING)
            .order_by(ReviewRequest.created_at)
        ).all()
        return [describe(r) for r in rows]


def get(settings: Settings, org_id: str, request_id: str) -> dict[str, Any] | None:
    with session_scope(settings.database_url) as session:
        row = session.get(ReviewRequest, request_id)
        return describe(row) if row is not None and row.org_id == org_id else None


def describe(row: ReviewRequest) -> dict[str, Any]:
    return {
        "id": row.id,
        "meeting_id": row.meeting_id,
        "kind": row.kind,
        "op_key": row.op_key,
        "destination": row.destination,
        "state": row.state,
        "fields": row.proposal.get("fields") or [],
        "evidence": row.proposal.get("evidence") or {},
        "object": row.proposal.get("object"),
        "label": row.proposal.get("label"),
        "record_url": row.proposal.get("record_url"),
        "question": row.proposal.get("question"),
        "choices": row.proposal.get("choices") or [],
        "approvers": row.approvers,
        "decided_by": row.decided_by,
        "decided_at": row.decided_at.isoformat() if row.decided_at else None,
        "corrections": row.corrections,
        "model": row.model,
        "prompt_version": row.prompt_version,
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
    }


class ReviewEnqueuer(Protocol):
    """What a decision's caller enqueues with (the app's pipeline)."""

    def enqueue_ops(self, keys: Iterable[str]) -> int: ...

    def enqueue_review_refresh(self, meeting_id: str) -> None: ...


def follow_up(pipeline: ReviewEnqueuer, decided: Decided) -> None:
    """Enqueue what a decision released, and show the decision in the review message."""
    if decided.release:
        pipeline.enqueue_ops(decided.release)
    if decided.ok and decided.meeting_id:
        pipeline.enqueue_review_refresh(decided.meeting_id)


def explain(response_url: str | None, text: str) -> None:
    """Tell the person who clicked, and only them (an ephemeral answer)."""
    if response_url:
        respond(response_url, text)


# -- the decision --------------------------------------------------------------------------
@contextmanager
def _writing(settings: Settings) -> Iterator[Session]:
    """A session for a decision; on SQLite, one decision of this process at a time."""
    turn = _SQLITE_TURN if settings.database_url.startswith("sqlite") else nullcontext()
    with turn, session_scope(settings.database_url) as session:
        yield session


def _refusal(request: ReviewRequest | None, who: Reviewer) -> Decided | None:
    if request is None:
        return Decided(False, "That review is unknown here.")
    if request.state != Verdict.PENDING:
        return Decided(False, _already(request), request.meeting_id)
    approvers = request.approvers or {}
    allowed = who.admin or (
        (who.slack_id is not None and who.slack_id in approvers.get("slack_ids", []))
        or (who.email is not None and who.email.lower() in approvers.get("emails", []))
    )
    if not allowed:
        named = ", ".join(approvers.get("emails", [])) or "the approvers the mapping names"
        return Decided(False, f"Only {named} may decide this change.", request.meeting_id)
    return None


def _already(request: ReviewRequest) -> str:
    when = request.decided_at.strftime("%Y-%m-%d %H:%M UTC") if request.decided_at else ""
    who = request.decided_by or "someone"
    mention = f"<@{who}>" if who.startswith("U") else who
    if request.state == Verdict.EXPIRED:
        return f"This change expired at {when} and was skipped; nothing was written."
    return f"Already {request.state} by {mention} at {when}; nothing more was done."


def _record(
    session: Session,
    request: ReviewRequest,
    verdict: Verdict,
    who: Reviewer,
    edited: dict[str, Any] | None = None,
    corrections: list[dict[str, Any]] | None = None,
    chosen: dict[str, Any] | None = None,
) -> Decided:
    """The two conditional updates; a second decision raises _Conflict (rolled back)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    proposal = dict(request.proposal)
    if edited is not None:
        proposal["edited"] = edited
    if chosen is not None:
        proposal["answer"] = chosen
    hit = session.execute(
        update(ReviewRequest)
        .where(ReviewRequest.id == request.id, ReviewRequest.state == Verdict.PENDING)
        .values(
            state=verdict,
            decided_by=who.label,
            decided_at=now,
            corrections=corrections or [],
            proposal=proposal,
        )
        .execution_options(synchronize_session=False)
    )
    if hit.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(request)
        raise _Conflict(_already(request))
    values: dict[str, Any] = {"state": OpState.PLANNED}
    if verdict == Verdict.SKIPPED:
        values = {"state": OpState.SKIPPED, "last_error": "review skipped"}
    elif edited is not None:
        values["fields"], values["payload_hash"] = edited["fields"], edited["payload_hash"]
        if edited.get("target") is not None:
            values["target"] = edited["target"]
    moved = session.execute(
        update(OpRecord)
        .where(
            OpRecord.key == request.op_key,
            OpRecord.state == OpState.AWAITING_REVIEW,
            OpRecord.payload_hash == request.payload_hash,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise _Conflict("This change was planned again since; look at the newest message.")
    release = [] if verdict == Verdict.SKIPPED else [str(request.op_key)]
    words = {"approved": "Approved", "edited": "Edited", "skipped": "Skipped"}[verdict]
    if chosen is not None:
        words = f"Thanks: {chosen['label']} owns it"
    return Decided(True, f"{words}.", request.meeting_id, release)


# -- the provider's side -----------------------------------------------------------------
def _schema(session: Session, settings: Settings, row: OpRecord) -> TargetSchema | None:
    """What the destination accepts (picklists, types, lengths), for the Edit modal."""
    try:
        return build_connector(session, settings, row.connection, org_id=row.org_id).describe(
            row.target
        )
    except ConnectorError:
        return None


def _slack_of(session: Session, settings: Settings, meeting_id: str) -> ReviewSlack | None:
    message = session.scalars(
        select(ReviewMessage).where(ReviewMessage.meeting_id == meeting_id)
    ).first()
    if message is None:
        return None
    connector = build_connector(session, settings, message.connection, org_id=message.org_id)
    return ReviewSlack(connector) if isinstance(connector, SlackConnector) else None
