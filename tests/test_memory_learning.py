"""What review edits teach org memory: aliases from edited owners, terms from respellings,
suggested preferences from edits repeated across meetings; each with its source, each
undoable, never across orgs.

The decisions here are recorded as `admin.review.edit` records them (the request edited,
its corrections naming the reviewer) and handed to `learn_from_edit` as the edit does;
tests/test_review.py drives one edit through the admin API end to end.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from admin import learning, memory, suggestions
from admin.errors import Invalid, NotFound
from admin.learning import corrected_terms
from admin.meeting_store import store_meeting
from meetsync.db.models import MemoryEntry, MemoryLearning, OpRecord, ReviewRequest
from meetsync.db.session import session_scope
from meetsync.models import MeetingOutput
from meetsync.states import Verdict
from tests.test_memory import db  # noqa: F401  (migrated, with orgs acme and globex)

PRIYA = {"name": "Priya Raman", "email": "priya@acme.io", "aliases": ["Pria"]}
TASKS = "customer-followups"


def edited(
    url: str,
    field: str,
    before: Any,
    after: Any,
    *,
    org: str = "acme",
    meeting: str = "m-1",
    label: str = "Send the contract for legal review",
    owner: str | None = None,
    destination: str = TASKS,
) -> list[MemoryLearning]:
    """A held op of `meeting` whose `field` a reviewer (U1) changed from `before` to `after`."""
    with session_scope(url) as session:
        stored = store_meeting(session, _meeting(org, meeting)).meeting_id
        key = f"{org}-{meeting}-{field}-{label}"[:64]
        row = OpRecord(
            key=key,
            org_id=org,
            meeting_id=stored,
            connector="asana",
            connection=f"{org}-asana",
            action="upsert_task",
            target={"project": "Customer Follow-ups"},
            fields={field: after},
            payload_hash="h",
            state="planned",
            destination=destination,
            item={"title": label, "owner": owner},
        )
        corrections = [{"field": field, "before": before, "after": after, "who": "U1"}]
        request = ReviewRequest(
            org_id=org,
            meeting_id=stored,
            op_key=key,
            payload_hash="h",
            destination=destination,
            proposal={
                "destination": destination,
                "label": label,
                "fields": [{"name": field, "proposed": before}],
                "owner": owner,
                "owner_field": "assignee_email",
            },
            state=Verdict.EDITED,
            decided_by="U1",
            corrections=corrections,
        )
        session.add_all([row, request])
        session.flush()
        learned = learning.learn_from_edit(session, request, row, corrections)
        session.expunge_all()
        return learned


def _meeting(org: str, meeting: str) -> MeetingOutput:
    return MeetingOutput.model_validate(
        {
            "org_id": org,
            "meeting_id": meeting,
            "title": "Weekly",
            "start": "2026-11-17T15:00:00Z",
            "end": "2026-11-17T15:30:00Z",
            "attendees": [{"name": "Sam Patel", "email": "sam@acme.io"}],
            "transcript": [{"speaker": "Dana", "text": "Sam will send it."}],
        }
    )


def entries(url: str, org: str = "acme", kind: str | None = None) -> list[memory.EntryOut]:
    with session_scope(url) as session:
        return memory.list_entries(session, org, kind)


# -- an edited owner ---------------------------------------------------------------------
def test_an_edited_owner_becomes_an_alias_of_the_chosen_person_with_its_source(db: str) -> None:  # noqa: F811
    with session_scope(db) as session:
        priya = memory.add_entry(session, "acme", "person", PRIYA).id

    (lesson,) = edited(db, "assignee_email", "pr@acme.io", "priya@acme.io", owner="Preya")

    (person,) = entries(db, kind="person")
    assert person.id == priya and person.data["aliases"] == ["Pria", "Preya"]
    assert person.source == "admin"  # the entry stays the admin's; the lesson names review
    (shown,) = person.learned
    assert (shown.kind, shown.heard, shown.meant) == ("alias", "Preya", "Priya Raman")
    assert shown.decided_by == "U1" and shown.review_request_id and shown.meeting_id
    assert shown.id == lesson.id

    # undone by the entry's id: the alias goes, the admin's entry stays
    with session_scope(db) as session:
        (undone,) = learning.undo(session, "acme", priya)
    assert undone.state == "undone"
    (person,) = entries(db, kind="person")
    assert person.data["aliases"] == ["Pria"] and person.learned == []


def test_an_owner_memory_did_not_know_becomes_a_person_named_as_they_attended(db: str) -> None:  # noqa: F811
    (lesson,) = edited(db, "assignee_email", None, "sam@acme.io", owner="Sem")

    (person,) = entries(db, kind="person")
    assert person.data == {"name": "Sam Patel", "email": "sam@acme.io", "aliases": ["Sem"]}
    assert person.source == "review"

    # undone by the lesson's id: the entry it created goes
    with session_scope(db) as session:
        learning.undo(session, "acme", lesson.id)
        with pytest.raises(NotFound):
            learning.undo(session, "acme", lesson.id)  # nothing left to undo
    assert entries(db) == []


def test_an_alias_another_person_holds_is_not_learned_and_the_edit_stands(db: str) -> None:  # noqa: F811
    with session_scope(db) as session:
        memory.add_entry(session, "acme", "person", PRIYA)
        memory.add_entry(session, "acme", "person", {"name": "Sam Patel", "email": "sam@acme.io"})

    assert edited(db, "assignee_email", "priya@acme.io", "sam@acme.io", owner="Pria") == []
    sam = next(e for e in entries(db) if e.name == "Sam Patel")
    assert "aliases" not in sam.data and sam.learned == []


def test_deleting_a_learned_person_deletes_what_review_taught_about_them(db: str) -> None:  # noqa: F811
    edited(db, "assignee_email", None, "sam@acme.io", owner="Sem")
    (person,) = entries(db)
    with session_scope(db) as session:
        memory.delete_entry(session, "acme", person.id)
        assert session.scalars(select(MemoryLearning)).all() == []


# -- a corrected term --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("before", "after", "learned"),
    [
        pytest.param(
            "Roll out Cooper Netties to the pilot team",
            "Roll out Kubernetes to the pilot team",
            [("Cooper Netties", "Kubernetes")],
            id="two-words-to-one",
        ),
        pytest.param(
            "Send Glowbex the pricing sheet.",
            "Send Globex the pricing sheet.",
            [("Glowbex", "Globex")],
            id="one-word",
        ),
        pytest.param(
            "Send the pricing sheet",
            "Call them next week about the contract instead",
            [],
            id="a-rewrite",
        ),
        pytest.param("Due on 2026-12-01 at noon", "Due on 2026-12-03 at noon", [], id="a-date"),
        pytest.param("Prospecting", "Negotiation/Review", [], id="a-picklist-value"),
        pytest.param("Send the deck", "send the deck", [], id="only-case"),
    ],
)
def test_a_respelling_is_a_term_and_a_rewrite_is_not(
    before: str, after: str, learned: list[tuple[str, str]]
) -> None:
    assert corrected_terms(before, after) == learned


def test_a_corrected_term_becomes_a_term_entry_and_joins_a_known_one(db: str) -> None:  # noqa: F811
    (lesson,) = edited(
        db, "notes", "Roll out Cooper Netties to the pilot", "Roll out Kubernetes to the pilot"
    )
    (term,) = entries(db, kind="term")
    assert term.data == {"name": "Kubernetes", "aliases": ["Cooper Netties"]}
    assert term.learned[0].id == lesson.id and term.learned[0].kind == "term"

    edited(
        db,
        "notes",
        "Size the Cuber Netties cluster today",
        "Size the Kubernetes cluster today",
        meeting="m-2",
    )
    (term,) = entries(db, kind="term")
    assert term.data["aliases"] == ["Cooper Netties", "Cuber Netties"]
    assert len(term.learned) == 2


# -- an edit repeated across meetings ----------------------------------------------------
def test_an_edit_repeated_in_two_meetings_is_suggested_not_applied_until_accepted(
    db: str,  # noqa: F811
) -> None:
    # one meeting's edit is not a habit
    assert edited(db, "project", "Customer Follow-ups", "Legal", meeting="m-1") == []
    # the same edit in the same meeting again is not either
    edited(db, "project", "Customer Follow-ups", "Legal", meeting="m-1", label="Legal review: MSA")
    with session_scope(db) as session:
        assert suggestions.pending(session, "acme") == []

    (suggestion,) = edited(
        db, "project", "Customer Follow-ups", "Legal", meeting="m-2", label="Legal review of DPA"
    )
    assert suggestion.state == "pending" and suggestion.decided_by == "U1"
    assert suggestion.rule["when"] == {"destination": TASKS, "item_text_contains": "legal review"}
    assert suggestion.rule["then"] == {"set": {"project": "Legal"}}
    assert entries(db, kind="preference") == []  # nothing applied yet

    # a third meeting offers nothing new
    edited(db, "project", "Customer Follow-ups", "Legal", meeting="m-3", label="Legal review")
    with session_scope(db) as session:
        (waiting,) = suggestions.pending(session, "acme")
        assert waiting.id == suggestion.id
        accepted = suggestions.accept(session, "acme", suggestion.id)
        with pytest.raises(Invalid):
            suggestions.decline(session, "acme", suggestion.id)
    (rule,) = entries(db, kind="preference")
    assert rule.id == accepted.entry_id and rule.data["then"] == {"set": {"project": "Legal"}}
    assert rule.learned[0].kind == "preference"

    # undone: the rule goes, and is not offered again
    with session_scope(db) as session:
        learning.undo(session, "acme", rule.id)
    assert entries(db, kind="preference") == []
    assert edited(db, "project", "Inbox", "Legal", meeting="m-4", label="Legal review") == []


def test_a_declined_suggestion_is_not_offered_again(db: str) -> None:  # noqa: F811
    edited(db, "priority", "low", "high", meeting="m-1", label="Fix the login bug")
    (suggestion,) = edited(db, "priority", "low", "high", meeting="m-2", label="Call Bob")
    assert "item_text_contains" not in suggestion.rule["when"]  # nothing shared to name
    with session_scope(db) as session:
        suggestions.decline(session, "acme", suggestion.id)
    assert edited(db, "priority", "low", "high", meeting="m-3", label="Ship it") == []
    with session_scope(db) as session:
        assert suggestions.pending(session, "acme") == []


# -- never across orgs -------------------------------------------------------------------
def test_nothing_is_learned_across_orgs(db: str) -> None:  # noqa: F811
    with session_scope(db) as session:
        memory.add_entry(session, "globex", "person", PRIYA)
        memory.add_entry(session, "acme", "person", PRIYA)

    edited(db, "assignee_email", None, "priya@acme.io", owner="Preya", org="globex")
    edited(db, "project", "Inbox", "Legal", org="globex", meeting="m-1")
    edited(db, "project", "Inbox", "Legal", org="acme", meeting="m-2")

    (acme_priya,) = entries(db, "acme", "person")
    assert acme_priya.data["aliases"] == ["Pria"] and acme_priya.learned == []
    with session_scope(db) as session:
        assert suggestions.pending(session, "acme") == []
        assert suggestions.pending(session, "globex") == []
        lesson = session.scalars(select(MemoryLearning)).first()
        assert lesson is not None and lesson.org_id == "globex"
        with pytest.raises(NotFound):
            learning.undo(session, "acme", lesson.id)
        # another org's suggestion cannot be accepted here either
        assert session.scalars(select(MemoryEntry).where(MemoryEntry.org_id == "acme")).all()
