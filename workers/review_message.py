"""Review in the pipeline, the message's side: show decisions, expire, remind.

`refresh` posts or updates a meeting's review messages from what is stored (who decided
what and when, links to what was written); `expire` records overdue requests as skipped;
`remind` nudges the approvers once in the message's thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from connectors.slack import SlackConnector
from connectors.slack_review import ReviewSlack, review_message
from meetsync.db.models import Meeting, OpRecord, ReviewMessage, ReviewRequest
from meetsync.hashing import stable_hash
from meetsync.links import meeting_link
from meetsync.states import OpState, Verdict
from workers import ledger
from workers.review import DECIDED_RELEASE, pending, utcnow
from workers.runtime import Runtime

REFRESH_S = 1.0  # how soon a message showing a write in flight looks again


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
                ledger.ops_by_key(), {"keys": [q.op_key for q in requests if q.op_key]}
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
            "url": meeting_link(runtime.settings, meeting.id),
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
            rendered = stable_hash([text, blocks])
            if rendered == message.rendered:
                continue  # Slack shows this already: no chat.update spent on it
            connector = runtime.connectors.get(session, message.connection, org_id=message.org_id)
            if not isinstance(connector, SlackConnector):
                continue
            slack = ReviewSlack(connector)
            if message.ts is None:
                # a post whose answer was lost is found by its metadata, not posted twice
                found = slack.find(message.channel, meeting_id)
                if found is None:
                    message.channel_id, message.ts = slack.post(
                        message.channel, text, blocks, meeting_id
                    )
                    message.rendered = rendered
                    continue
                message.channel_id, message.ts = found
            slack.update(message.channel_id or message.channel, message.ts, text, blocks)
            message.rendered = rendered
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
        for request in pending(session, meeting_id):
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
        waiting = [r for r in pending(session, meeting_id) if r.reminded_at is None]
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
            connector = runtime.connectors.get(session, message.connection, org_id=message.org_id)
            if isinstance(connector, SlackConnector) and message.ts:
                mention = " ".join(f"<@{u}>" for u in users)
                ReviewSlack(connector).reply(
                    message.channel_id or message.channel,
                    message.ts,
                    f"{mention} {len(waiting)} change(s) still wait for review; "
                    "unanswered ones are skipped when they expire.",
                )
                sent += 1
    return sent
