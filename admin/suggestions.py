"""Preferences suggested by repeated edits, pending until an admin accepts them.

When reviewers set the same field of the same destination to the same value in two or
more different meetings (project → Legal), memory offers the org's admin a preference
rule that would have done it (`meetsync memory suggestions`, `accept`, `decline`, and the
admin API). Nothing is applied before it is accepted; a declined suggestion is not offered
again. The rule's `when` names the destination and, if every edited item's title shares a
word, that word, so "tasks for legal review" does not become "every task".
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from admin.errors import Invalid, NotFound
from extraction.memory import store
from meetsync.db.models import MemoryLearning, ReviewRequest
from meetsync.states import Verdict

MIN_MEETINGS = 2
MAX_VALUE_CHARS = 80  # a longer value is prose written for one item, not a habit
LOOKBACK = 500  # the org's most recent edit decisions considered
_WORD = re.compile(r"[^\W\d_]+")
_COMMON = {"a", "an", "the", "to", "for", "of", "on", "in", "and", "with", "from", "send", "up"}
_COMMON |= {"follow", "about", "this", "that", "their", "them", "it", "is", "be"}


def suggest_preference(
    session: Session, request: ReviewRequest, who: str | None, field: str, value: Any
) -> MemoryLearning | None:
    """A pending suggestion when this edit repeats one made in another meeting."""
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        return None
    destination = request.proposal.get("destination")
    labels = {request.meeting_id: str(request.proposal.get("label") or "")}
    for other in _same_edits(session, request, destination, field, value):
        labels.setdefault(other.meeting_id, str(other.proposal.get("label") or ""))
    if len(labels) < MIN_MEETINGS:
        return None
    rule = _rule(destination, field, value, list(labels.values()))
    if _offered(session, request.org_id, rule):
        return None
    suggestion = MemoryLearning(
        org_id=request.org_id,
        kind="preference",
        state="pending",
        field=field,
        meant=str(value)[:400],
        rule=rule,
        review_request_id=request.id,
        meeting_id=request.meeting_id,
        decided_by=who,
    )
    session.add(suggestion)
    session.flush()
    return suggestion


def pending(session: Session, org_id: str) -> list[MemoryLearning]:
    """The org's suggestions waiting for an admin, oldest first."""
    return list(
        session.scalars(
            select(MemoryLearning)
            .where(
                MemoryLearning.org_id == org_id,
                MemoryLearning.kind == "preference",
                MemoryLearning.state == "pending",
            )
            .order_by(MemoryLearning.created_at, MemoryLearning.id)
        )
    )


def accept(session: Session, org_id: str, suggestion_id: str) -> MemoryLearning:
    """Make the suggested rule a preference the planner applies from now on."""
    suggestion = _pending(session, org_id, suggestion_id)
    try:
        entry = store.put_entry(session, org_id, "preference", suggestion.rule, source="review")
    except store.BadEntry as exc:
        raise Invalid(f"suggestion {suggestion_id}: {exc}") from None
    suggestion.entry_id, suggestion.created_entry = entry.id, True
    return _settle(suggestion, "accepted")


def decline(session: Session, org_id: str, suggestion_id: str) -> MemoryLearning:
    """Turn the suggestion down; the same rule is not offered again."""
    return _settle(_pending(session, org_id, suggestion_id), "declined")


def _same_edits(
    session: Session, request: ReviewRequest, destination: Any, field: str, value: Any
) -> list[ReviewRequest]:
    """The org's other edit decisions that set this field of this destination to `value`."""
    recent = session.scalars(
        select(ReviewRequest)
        .where(
            ReviewRequest.org_id == request.org_id,
            ReviewRequest.state == Verdict.EDITED,
            ReviewRequest.id != request.id,
        )
        .order_by(ReviewRequest.decided_at.desc())
        .limit(LOOKBACK)
    )
    return [
        r
        for r in recent
        if r.proposal.get("destination") == destination
        and any(c["field"] == field and c["after"] == value for c in r.corrections or [])
    ]


def _rule(destination: Any, field: str, value: Any, labels: list[str]) -> dict[str, Any]:
    when: dict[str, Any] = {"destination": destination} if destination else {}
    shared = _shared_word(labels)
    if shared:
        when["item_text_contains"] = shared
    said = f" when an item mentions {shared!r}" if shared else ""
    text = f"Reviewers set {field} to {value!r} on {destination or 'every destination'}{said}"
    return store.check_entry(
        "preference", {"text": text[:400], "when": when, "then": {"set": {field: value}}}
    )


def _shared_word(labels: list[str]) -> str | None:
    """The longest run of words every label holds ("legal review"), if any says something."""
    first, others = _WORD.findall(labels[0].casefold()), [label.casefold() for label in labels[1:]]
    best: str | None = None
    for start in range(len(first)):
        for end in range(start + 1, len(first) + 1):
            run = first[start:end]
            phrase = " ".join(run)
            if not all(f" {phrase} " in _spaced(other) for other in others):
                break
            if set(run) - _COMMON and len(phrase) > len(best or ""):
                best = phrase
    return best


def _spaced(label: str) -> str:
    return f" {' '.join(_WORD.findall(label))} "


def _offered(session: Session, org_id: str, rule: dict[str, Any]) -> bool:
    """Whether this rule was suggested before (whatever became of it)."""
    earlier = session.scalars(
        select(MemoryLearning.rule).where(
            MemoryLearning.org_id == org_id, MemoryLearning.kind == "preference"
        )
    )
    key = (rule.get("when"), rule.get("then"))
    return any((r.get("when"), r.get("then")) == key for r in earlier)


def _pending(session: Session, org_id: str, suggestion_id: str) -> MemoryLearning:
    row = session.get(MemoryLearning, suggestion_id)
    if row is None or row.org_id != org_id or row.kind != "preference":
        raise NotFound(f"no suggested preference {suggestion_id!r} in org {org_id!r}")
    if row.state != "pending":
        raise Invalid(f"suggestion {suggestion_id} was {row.state} already")
    return row


def _settle(row: MemoryLearning, state: str) -> MemoryLearning:
    row.state, row.settled_at = state, datetime.now(UTC)
    return row
