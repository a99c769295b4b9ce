"""Storing verified webhook deliveries, a batch at a time (the writer: `intake.deliveries`).

Most deliveries of a batch are fresh: a new id, a new signature, a new meeting of a known
org. Those are stored with one lookup (the orgs) and three multi-row inserts for the
whole batch (delivery ids, signatures, meetings), each claiming its rows with ON CONFLICT
DO NOTHING: a row already there, stored before or by another process meanwhile, is
noticed row by row, and what that delivery claimed before is released. Every delivery
that is not fresh (one sharing an id, a signature or a meeting with an earlier one of the
batch, an unknown org) or whose claim failed (a repeat, a replayed signature, a revision)
is stored after them, alone, in its own savepoint and in arrival order, by `accept_one`:
it sees what came before it and gets exactly the answer it would have had alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from fastapi.responses import JSONResponse
from sqlalchemy import Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from admin.meeting_store import UnknownOrg, new_meeting_row, store_meeting
from intake.deliveries import MAX_PENDING, DeliveryWriter, Refused, Written
from meetsync.db.models import Meeting, Org, WebhookEvent, WebhookSignature, new_id
from meetsync.links import meeting_link
from meetsync.models import MeetingOutput
from meetsync.settings import Settings

RETRY_AFTER = {"Retry-After": "1"}


def problem(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """An error answer: {"error": {"code", "message", ...}}."""
    body = {"error": {"code": code, "message": message, **extra}}
    return JSONResponse(body, status_code=status, headers=headers)


@dataclass(frozen=True)
class Delivery:
    """A verified, parsed delivery on its way to the database."""

    meeting: MeetingOutput
    event_id: str
    fingerprint: str  # of the accepted signature: refused if seen again inside the window
    # its meeting's row and its answer if it is new: made by the handler, not in the batch
    # that every delivery of it waits for
    row: dict[str, Any]
    answer: dict[str, str]

    @classmethod
    def of(
        cls, settings: Settings, meeting: MeetingOutput, event_id: str, fingerprint: str
    ) -> Delivery:
        meeting_id = new_id()
        answer = {
            "meeting_id": meeting_id,
            "status": "accepted",
            "status_url": meeting_link(settings, meeting_id),
        }
        row = {**new_meeting_row(meeting), "id": meeting_id}
        return cls(meeting, event_id, fingerprint, row, answer)

    @property
    def key(self) -> tuple[str, str]:
        return self.meeting.org_id, self.meeting.meeting_id


class Replayed(Exception):
    """This signature was accepted before, under another delivery id."""


def delivery_writer(state: Any, max_pending: int = MAX_PENDING) -> DeliveryWriter:
    """The app's writer of webhook deliveries (`state`: the app's settings and pipeline)."""
    url = state.settings.database_url
    return DeliveryWriter(
        url,
        store_one=partial(accept_one, state),
        store_many=partial(accept_many, state),
        # SQLite: every batch (it opens the write the savepoints nest in; a local call);
        # PostgreSQL: now and then (a round trip to a busy server costs every waiter)
        prepare=forget_expired_signatures if url.startswith("sqlite") else _Every(SWEEP_S),
        max_pending=max_pending,
    )


SWEEP_S = 5.0


class _Every:
    """`forget_expired_signatures` at most once per `seconds`."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.last = seconds, float("-inf")

    def __call__(self, session: Session) -> None:
        now = time.monotonic()
        if now - self.last >= self.seconds:
            self.last = now
            forget_expired_signatures(session)


def accept_one(state: Any, session: Session, delivery: Delivery) -> Written[JSONResponse]:
    """Dedupe and store one delivery (in its own savepoint): its answer, and the enqueue
    once the batch is committed and answered. Refused: nothing of it stays."""
    settings, meeting = state.settings, delivery.meeting
    seen = session.get(WebhookEvent, delivery.event_id)
    if seen is not None:
        replayed = JSONResponse(
            seen.response, status_code=seen.status_code, headers={"X-Meetsync-Replay": "true"}
        )
        return Written(replayed)
    try:
        remember_signature(session, delivery.fingerprint, settings.webhook_tolerance_s)
        stored = store_meeting(session, meeting)
    except Replayed:
        message = "this signature was already accepted; sign anew to resend"
        raise Refused(problem(401, "replayed_signature", message)) from None
    except UnknownOrg:
        message = f"org {meeting.org_id!r} is not set up"
        raise Refused(problem(404, "unknown_org", message)) from None
    answer = {
        "meeting_id": stored.meeting_id,
        "status": "stale" if stored.stale else "accepted",
        "status_url": meeting_link(settings, stored.meeting_id),
    }
    status_code = 200 if stored.stale else 202
    session.add(
        WebhookEvent(
            event_id=delivery.event_id,
            org_id=meeting.org_id,
            meeting_id=stored.meeting_id,
            status_code=status_code,
            response=answer,
        )
    )
    session.flush()
    if stored.stale:
        # an older revision than the stored one: acknowledged, so the sender stops retrying
        return Written(JSONResponse(answer, status_code=200))
    return _accepted(state, answer, meeting.org_id)


def accept_many(
    state: Any, session: Session, deliveries: list[Delivery]
) -> list[Written[JSONResponse] | None]:
    """Store the batch's fresh deliveries together; None for those left to `accept_one`."""
    fresh = _fresh(session, deliveries)
    if not fresh:
        return [None] * len(deliveries)
    expires = _now() + timedelta(seconds=_kept_s(state.settings.webhook_tolerance_s))
    answers = {i: deliveries[i].answer for i in fresh}
    # each insert claims its rows; one another process claimed first goes to accept_one
    claimed = _claim(
        session,
        WebhookEvent,
        "event_id",
        {
            i: {
                "event_id": deliveries[i].event_id,
                "org_id": deliveries[i].meeting.org_id,
                "meeting_id": answers[i]["meeting_id"],
                "status_code": 202,
                "response": answers[i],
            }
            for i in fresh
        },
    )
    signed = _claim(
        session,
        WebhookSignature,
        "fingerprint",
        {i: {"fingerprint": deliveries[i].fingerprint, "expires_at": expires} for i in claimed},
    )
    stored = _claim(
        session,
        Meeting,
        "id",
        {i: deliveries[i].row for i in signed},
    )
    _release(session, WebhookEvent.event_id, [deliveries[i].event_id for i in claimed - signed])
    lost = signed - stored
    _release(session, WebhookEvent.event_id, [deliveries[i].event_id for i in lost])
    _release(session, WebhookSignature.fingerprint, [deliveries[i].fingerprint for i in lost])
    return [
        _accepted(state, answers[i], deliveries[i].meeting.org_id) if i in stored else None
        for i in range(len(deliveries))
    ]


def _fresh(session: Session, deliveries: list[Delivery]) -> list[int]:
    """Indexes of the deliveries of a known org that share nothing with an earlier one of
    the batch (what they share with the database, their claims find out)."""
    orgs = _present(session, Org.id, {d.meeting.org_id for d in deliveries})
    events: set[str] = set()
    signatures: set[str] = set()
    keys: set[tuple[str, str]] = set()
    fresh = []
    for i, d in enumerate(deliveries):
        if (
            d.meeting.org_id in orgs
            and d.event_id not in events
            and d.fingerprint not in signatures
            and d.key not in keys
        ):
            fresh.append(i)
        # whatever came of it, a later delivery sharing any of these is not fresh
        events.add(d.event_id)
        signatures.add(d.fingerprint)
        keys.add(d.key)
    return fresh


def _present(session: Session, column: Any, values: set[str]) -> set[str]:
    return set(session.scalars(select(column).where(column.in_(values))))


def _claim(
    session: Session, model: type[Any], key: str, rows: dict[int, dict[str, Any]]
) -> set[int]:
    """Insert `rows` (by delivery index), skipping any that conflict; the indexes inserted."""
    if not rows:
        return set()
    table: Table = model.__table__
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table).on_conflict_do_nothing().returning(table.c[key])
    inserted = set(session.scalars(statement, list(rows.values())))
    return {i for i, row in rows.items() if row[key] in inserted}


def _release(session: Session, column: Any, values: Iterable[str]) -> None:
    """Drop rows claimed for a delivery that lost a later claim (it goes to accept_one)."""
    wanted = list(values)
    if wanted:
        session.execute(delete(column.class_).where(column.in_(wanted)))


def _accepted(state: Any, answer: dict[str, str], org_id: str) -> Written[JSONResponse]:
    accepted = JSONResponse(answer, status_code=202, headers={"Location": answer["status_url"]})
    # with its org, the throttle routes the extraction without reading the meeting back
    enqueue: Callable[[], None] = partial(
        state.pipeline.enqueue_extract, answer["meeting_id"], org=org_id
    )
    return Written(accepted, then=enqueue)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _kept_s(window_s: int) -> int:
    """How long an accepted signature is remembered: its window on both sides of our clock."""
    return 2 * window_s + 60


def forget_expired_signatures(session: Session) -> None:
    """Drop the signatures whose window is over (once per batch; on SQLite, it also opens
    the write transaction that the deliveries' savepoints nest in)."""
    session.execute(delete(WebhookSignature).where(WebhookSignature.expires_at < _now()))


def remember_signature(session: Session, fingerprint: str, window_s: int) -> None:
    """Record an accepted signature for its window; Replayed if it is there already."""
    if session.get(WebhookSignature, fingerprint) is not None:
        raise Replayed
    expires = _now() + timedelta(seconds=_kept_s(window_s))
    session.add(WebhookSignature(fingerprint=fingerprint, expires_at=expires))
    # a concurrent replay that got past the check fails on this row's key (IntegrityError)
    session.flush()
