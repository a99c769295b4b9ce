"""What a reviewer's edit teaches org memory, and how to take it back.

An edit of a held op (`admin.review.edit`: the admin API, the console, Slack's Edit modal)
teaches, within the request's org only:

- an edited owner: the name the meeting said ("Jon") becomes an alias of the person the
  reviewer chose (a new person entry when memory does not know them yet);
- a corrected term: a word or two replaced in a text field ("Cooper Netties" →
  "Kubernetes") becomes an alias of that term;
- the same edit repeated across meetings: a suggested preference (admin/suggestions.py).

Each lesson is a `MemoryLearning` row naming the decision, the meeting and the reviewer,
shown with its entry in `memory list` and undone by `undo` (an added alias is removed, an
entry the lesson created is deleted). A lesson memory would refuse (an alias another
person already has) is not learned: a review never fails for what memory makes of it.
"""

from __future__ import annotations

import difflib
import logging
import re
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from admin.errors import Invalid, NotFound
from admin.suggestions import suggest_preference
from extraction.memory import store
from meetsync.db.models import Meeting, MemoryEntry, MemoryLearning, OpRecord, ReviewRequest
from meetsync.models import UtcDatetime

log = logging.getLogger(__name__)
MAX_TERM_WORDS = 3  # a longer replacement is a rewrite, not a spelling
MAX_TERMS_PER_EDIT = 2
_EDGE = re.compile(r"^\W+|\W+$")


class LearnedOut(BaseModel):
    """One lesson as the CLI and the API show it: what, from which decision, its state."""

    id: str
    kind: str
    state: str
    entry_id: str | None
    field: str
    heard: str | None
    meant: str
    rule: dict[str, Any]
    review_request_id: str | None
    meeting_id: str | None
    decided_by: str | None
    created_at: UtcDatetime


def learned_out(row: MemoryLearning) -> LearnedOut:
    return LearnedOut.model_validate(row, from_attributes=True)


def learn_from_edit(
    session: Session, request: ReviewRequest, row: OpRecord, corrections: list[dict[str, Any]]
) -> list[MemoryLearning]:
    """Every lesson of one edit decision, recorded in the caller's transaction."""
    owner_field = request.proposal.get("owner_field") or _owner_field(request)
    spoken = request.proposal.get("owner") or (row.item or {}).get("owner")
    learned: list[MemoryLearning] = []
    for correction in corrections:
        field, before, after = correction["field"], correction["before"], correction["after"]
        who = correction.get("who")
        if not isinstance(after, str) or not after.strip():
            continue
        if field == owner_field:
            lesson = _learn_alias(session, request, who, field, spoken, after)
            learned += [lesson] if lesson is not None else []
        elif isinstance(before, str):
            for heard, meant in corrected_terms(before, after):
                lesson = _learn_term(session, request, who, field, heard, meant)
                learned += [lesson] if lesson is not None else []
        suggestion = suggest_preference(session, request, who, field, after)
        learned += [suggestion] if suggestion is not None else []
    return learned


def corrected_terms(before: str, after: str) -> list[tuple[str, str]]:
    """The words a reviewer respelled in a text (heard → meant); [] for a rewrite.

    A correction keeps most of the text: only replacements of up to three words, at most
    two of them, with at least two words and two thirds of the text unchanged around them.
    """
    old, new = before.split(), after.split()
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    found: list[tuple[str, str]] = []
    kept = 0
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            kept += i2 - i1
            continue
        if tag != "replace" or max(i2 - i1, j2 - j1) > MAX_TERM_WORDS:
            return []
        heard = _EDGE.sub("", " ".join(old[i1:i2]))
        meant = _EDGE.sub("", " ".join(new[j1:j2]))
        if heard and meant and heard.casefold() != meant.casefold():
            found.append((heard, meant))
    if len(found) > MAX_TERMS_PER_EDIT or kept < 2 or kept * 3 < len(old) * 2:
        return []
    # numbers and dates are facts the model got wrong, not spellings
    return [(h, m) for h, m in found if not any(ch.isdigit() for ch in h + m)]


def undo(session: Session, org_id: str, ref: str, by: str | None = None) -> list[LearnedOut]:
    """Undo a lesson (by its id) or every lesson an entry holds (by the entry's id)."""
    lessons = list(
        session.scalars(
            select(MemoryLearning).where(
                MemoryLearning.org_id == org_id,
                (MemoryLearning.id == ref) | (MemoryLearning.entry_id == ref),
                MemoryLearning.state.in_(("applied", "accepted")),
            )
        )
    )
    if not lessons:
        raise NotFound(f"nothing learned to undo under {ref!r} in org {org_id!r}")
    for lesson in lessons:
        _undo_one(session, org_id, lesson)
    return [learned_out(lesson) for lesson in lessons]


def lessons_of(session: Session, org_id: str, entry_ids: list[str]) -> dict[str, list[LearnedOut]]:
    """The standing lessons of these entries, by entry id (for `memory list`)."""
    if not entry_ids:
        return {}
    rows = session.scalars(
        select(MemoryLearning)
        .where(
            MemoryLearning.org_id == org_id,
            MemoryLearning.entry_id.in_(entry_ids),
            MemoryLearning.state.in_(("applied", "accepted")),
        )
        .order_by(MemoryLearning.created_at, MemoryLearning.id)
    )
    found: dict[str, list[LearnedOut]] = {}
    for row in rows:
        found.setdefault(str(row.entry_id), []).append(learned_out(row))
    return found


# -- one lesson ---------------------------------------------------------------------------
def _learn_alias(
    session: Session,
    request: ReviewRequest,
    who: str | None,
    field: str,
    spoken: str | None,
    chosen: str,
) -> MemoryLearning | None:
    """The spoken owner's name as an alias of the person the reviewer chose."""
    if not spoken or not spoken.strip():
        return None
    org_id = request.org_id
    person = store.find_person(session, org_id, chosen)
    if person is None and "@" not in chosen:
        return None  # a provider id memory cannot name a person by
    if person is not None:
        known = {n.casefold() for n in (person.name, person.email or "", *person.aliases)}
        if spoken.strip().casefold() in known:
            return None
        data = {**person.data, "aliases": [*person.aliases, spoken.strip()]}
        return _put(session, request, who, "alias", field, spoken, person, data)
    name = _attendee_name(session, request.meeting_id, chosen) or chosen
    data = {"name": name, "email": chosen}
    if spoken.strip().casefold() != name.casefold():
        data["aliases"] = [spoken.strip()]
    return _put(session, request, who, "alias", field, spoken, None, data, kind="person")


def _learn_term(
    session: Session, request: ReviewRequest, who: str | None, field: str, heard: str, meant: str
) -> MemoryLearning | None:
    """A respelled word as an alias of the right spelling's term."""
    terms = store.entries(session, request.org_id, "term")
    term = next((t for t in terms if t.name.casefold() == meant.casefold()), None)
    if term is not None:
        if heard.casefold() in {a.casefold() for a in term.aliases}:
            return None
        data = {**term.data, "aliases": [*term.aliases, heard]}
        return _put(session, request, who, "term", field, heard, term, data)
    data = {"name": meant, "aliases": [heard]}
    return _put(session, request, who, "term", field, heard, None, data, kind="term")


def _put(
    session: Session,
    request: ReviewRequest,
    who: str | None,
    lesson: str,
    field: str,
    heard: str,
    entry: MemoryEntry | None,
    data: dict[str, Any],
    kind: str | None = None,
) -> MemoryLearning | None:
    try:
        if entry is not None:  # the entry keeps its own source; the lesson names the review
            row = store.put_entry(
                session,
                request.org_id,
                entry.kind,
                data,
                source=entry.source,
                source_ref=entry.source_ref,
                entry_id=entry.id,
            )
        else:
            row = store.put_entry(session, request.org_id, str(kind), data, source="review")
    except (store.MemoryConflict, store.BadEntry) as exc:
        log.info("review %s taught nothing about %s: %s", request.id, field, exc)
        return None
    learned = MemoryLearning(
        org_id=request.org_id,
        kind=lesson,
        state="applied",
        entry_id=row.id,
        created_entry=entry is None,
        field=field,
        heard=heard.strip(),
        meant=row.name,
        review_request_id=request.id,
        meeting_id=request.meeting_id,
        decided_by=who,
    )
    session.add(learned)
    session.flush()
    return learned


def _undo_one(session: Session, org_id: str, lesson: MemoryLearning) -> None:
    entry = session.get(MemoryEntry, lesson.entry_id or "")
    if lesson.kind == "preference":
        lesson.entry_id = None  # the undone suggestion stays on record: not offered again
        session.flush()
    if entry is not None and lesson.created_entry:
        store.delete_entry(session, org_id, entry.id)
    elif entry is not None and lesson.heard:
        aliases = [a for a in entry.aliases if a.casefold() != lesson.heard.casefold()]
        try:
            store.put_entry(
                session,
                org_id,
                entry.kind,
                {**entry.data, "aliases": aliases},
                source=entry.source,
                source_ref=entry.source_ref,
                entry_id=entry.id,
            )
        except store.BadEntry as exc:
            raise Invalid(f"cannot undo {lesson.id}: {exc}") from None
    lesson.state = "undone"
    lesson.settled_at = datetime.now(UTC)


def _owner_field(request: ReviewRequest) -> str | None:
    """For a request held before proposals named it: the field holding the item's owner."""
    email = request.proposal.get("owner_email")
    fields = request.proposal.get("fields") or []
    return next((f["name"] for f in fields if email and f.get("proposed") == email), None)


def _attendee_name(session: Session, meeting_id: str, email: str) -> str | None:
    meeting = session.get(Meeting, meeting_id)
    attendees = (meeting.payload.get("attendees") if meeting is not None else None) or []
    wanted = email.casefold()
    named = (a for a in attendees if (a.get("email") or "").casefold() == wanted)
    return next((str(a["name"]) for a in named if a.get("name")), None)
