"""Org memory: what admins teach, what a meeting recalls within its budget, what grounding
and the rules model make of it, and what a deleted person leaves behind (nothing)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alembic.command import downgrade
from sqlalchemy import event, select, text

from admin import memory, orgs
from admin.errors import Invalid, NotFound
from extraction.cache import extraction_key
from extraction.grounding import ground
from extraction.memory import meeting_profile, recall
from extraction.memory.closure import find_closures
from extraction.memory.recall import _entries as wanted_whole
from extraction.memory.search import BATCH, lexical_hits, names_and_commitments, words_of
from extraction.prompting import render_messages
from extraction.schemas import ActionItem
from meetsync.db.migrate import alembic_config, upgrade
from meetsync.db.models import MemoryEntry
from meetsync.db.session import engine_for, session_scope
from meetsync.models import MeetingOutput
from meetsync.settings import LLMSettings
from sandbox.rules_model import answer
from tests.sql_log import statements_sent

JON = {
    "name": "Jon Smith",
    "aliases": ["Jon", "John Smyth"],
    "email": "jon@acme.io",
    "role": "Account Executive",
}
PRIYA = {"name": "Priya Raman", "email": "priya@acme.io", "aliases": ["Pria"]}
KUBERNETES = {"name": "Kubernetes", "aliases": ["Cooper Netties"], "category": "product"}


def meeting(
    *lines: tuple[str, str], attendees: list[dict[str, Any]] | None = None
) -> MeetingOutput:
    return MeetingOutput.model_validate(
        {
            "org_id": "acme",
            "meeting_id": "m-1",
            "title": "Globex weekly",
            "start": "2026-11-17T15:00:00Z",
            "end": "2026-11-17T15:30:00Z",
            "attendees": attendees or [{"name": "Dana Reyes", "email": "dana@acme.io"}],
            "transcript": [{"speaker": s, "text": t} for s, t in lines],
        }
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def db(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """A migrated database with orgs acme and globex, on SQLite (FTS5) and PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/memory.db"
    else:
        url = request.getfixturevalue("postgres_url")
    upgrade(url)
    with session_scope(url) as session:
        orgs.create_org(session, "acme", "Acme")
        orgs.create_org(session, "globex", "Globex")
    yield url


def teach(url: str, *entries: tuple[str, dict[str, Any]], org: str = "acme") -> list[str]:
    with session_scope(url) as session:
        return [memory.add_entry(session, org, kind, data).id for kind, data in entries]


# -- what admins teach ----------------------------------------------------------------
def test_an_alias_claimed_by_a_second_person_is_refused_naming_both(db: str) -> None:
    teach(db, ("person", JON), ("person", {"name": "William Ng", "aliases": ["Will"]}))
    will = {"name": "Will Park", "aliases": ["will"]}
    claimed = pytest.raises(Invalid, match="'will' already names person 'William Ng'")
    with claimed, session_scope(db) as session:
        memory.add_entry(session, "acme", "person", will)
    with pytest.raises(Invalid) as refused, session_scope(db) as session:
        memory.add_entry(session, "acme", "person", {"name": "John Smythe", "aliases": ["Jon"]})
    assert "'Jon' already names person 'Jon Smith'" in str(refused.value)
    with session_scope(db) as session:
        listed = [e.name for e in memory.list_entries(session, "acme", "person")]
    assert listed == ["Jon Smith", "William Ng"]


@pytest.mark.parametrize(
    ("org", "kind", "data", "expected", "error"),
    [
        pytest.param("initech", "term", {"name": "x"}, "no org 'initech'", NotFound, id="org"),
        pytest.param("acme", "gadget", {"name": "x"}, "kind 'gadget'", Invalid, id="kind"),
        pytest.param(
            "acme", "preference", {"text": "x" * 5000}, "text: String should have at most 400",
            Invalid, id="too-long",
        ),
        pytest.param(
            "acme", "person", {"name": "Al", "email": "not an email"}, "email: Value error",
            Invalid, id="email",
        ),
        pytest.param(
            "acme", "preference", {"text": "x", "when": {"project": "Legal"}, "then": {}},
            "when.project: Extra inputs are not permitted", Invalid, id="rule-condition",
        ),
        pytest.param(
            "acme", "preference", {"text": "x", "then": {}},
            "then: Value error, then: needs set, set_target or skip_fields", Invalid,
            id="rule-without-action",
        ),
        pytest.param(
            "acme", "preference", {"text": "x", "when": {"connector": "asana"}},
            "a preference with when: needs then:", Invalid, id="rule-without-then",
        ),
    ],
)  # fmt: skip
def test_bad_entries_are_refused_with_the_field_named(
    db: str, org: str, kind: str, data: dict[str, Any], expected: str, error: type[Exception]
) -> None:
    with pytest.raises(error) as refused, session_scope(db) as session:
        memory.add_entry(session, org, kind, data)
    assert expected in str(refused.value)


def test_an_import_with_a_malformed_row_imports_nothing_and_says_where(db: str) -> None:
    document = {
        "people": [JON, {"name": "Priya Raman", "aliases": "Pria"}],
        "terms": [KUBERNETES],
    }
    with pytest.raises(Invalid) as refused, session_scope(db) as session:
        memory.import_memory(session, "acme", document)
    assert "people[1]: aliases: Input should be a valid list" in str(refused.value)
    clash = {"people": [JON, {"name": "Jonathan Smith", "aliases": ["John Smyth"]}]}
    with pytest.raises(Invalid) as clashed, session_scope(db) as session:
        memory.import_memory(session, "acme", clash)
    assert str(clashed.value).startswith("people[1]: person 'Jonathan Smith': 'John Smyth'")
    with session_scope(db) as session:
        assert memory.list_entries(session, "acme") == []


def test_an_export_imports_back_into_another_org_unchanged(db: str) -> None:
    teach(db, ("person", JON), ("term", KUBERNETES), ("preference", {"text": "Legal → Legal"}))
    with session_scope(db) as session:
        exported = memory.export_memory(session, "acme")
        report = memory.import_memory(session, "globex", exported)
        assert memory.export_memory(session, "globex") == exported
    assert report.written == {"person": 1, "term": 1, "preference": 1}


def test_deleting_a_person_deletes_every_entry_about_them(db: str) -> None:
    jon, _ = teach(db, ("person", JON), ("person", PRIYA))
    teach(
        db,
        ("commitment", {"title": "Send the proposal", "owner": "jon@acme.io"}),
        ("commitment", {"title": "Book the venue", "owner": "Priya Raman"}),
        ("preference", {"text": "Jon's tasks go to the Sales project", "person": "Jon"}),
    )
    with session_scope(db) as session:
        gone = memory.delete_entry(session, "acme", jon)
    with session_scope(db) as session:
        left = memory.list_entries(session, "acme")
        assert len(gone) == 3
        assert sorted(e.name for e in left) == ["Book the venue", "Priya Raman"]
        assert not any("jon" in str(e.data).lower() for e in left)
        # nothing of Jon is found by the lexical index either
        assert recall(session, "acme", meeting(("John Smyth", "Hi, Jon here."))).memory == {}


# -- what a meeting recalls -----------------------------------------------------------
def test_a_meeting_recalls_only_the_people_and_terms_it_names_and_its_attendees(db: str) -> None:
    teach(db, ("person", JON), ("person", PRIYA), ("term", KUBERNETES))
    teach(db, ("person", {"name": "Gina Linetti", "email": "gina@globex.com"}), org="globex")
    teach(db, ("person", {"name": "Ray Holt", "email": "ray@acme.io"}))
    said = meeting(
        ("John Smyth", "Our cooper netties cluster is fine."),
        ("Dana Reyes", "Pria will check the rollout, and Gina too."),
        attendees=[{"name": "Ray Holt", "email": "ray@acme.io"}],
    )
    with session_scope(db) as session:
        found = recall(session, "acme", said).memory
    assert [p["name"] for p in found["people"]] == ["Jon Smith", "Priya Raman", "Ray Holt"]
    assert [t["name"] for t in found["terms"]] == ["Kubernetes"]  # never globex's Gina


def test_a_misspelling_no_alias_lists_is_recalled_fuzzily(db: str) -> None:
    teach(db, ("person", {"name": "Siobhan Kelly"}), ("term", {"name": "Snowflake"}))
    said = meeting(("Dana Reyes", "Shivon Kelly compared us with Snowflak last week."))
    with session_scope(db) as session:
        found = recall(session, "acme", said).memory
    assert [t["name"] for t in found["terms"]] == ["Snowflake"]


def test_a_person_matched_fuzzily_is_recalled_with_all_the_org_taught_of_them(db: str) -> None:
    # names to match fuzzily are read without their data; the one that matches is read whole
    margaret = {"name": "Margaret Okafor", "email": "mo@acme.io", "role": "CFO"}
    teach(db, ("person", margaret), ("person", {"name": "Margaret Lin", "email": "ml@acme.io"}))
    teach(db, *(("person", {"name": f"Person {k}", "email": f"p{k}@acme.io"}) for k in range(30)))
    said = meeting(("Dana Reyes", "Margret Okafor signs off the budget."))
    with session_scope(db) as session:
        recall(session, "acme", said)  # the org is known to have memory from here on
    with statements_sent(engine_for(db)) as statements, session_scope(db) as session:
        found = recall(session, "acme", said).memory
    # not Margaret Lin too: "Margret" is the first name of the Margaret named in full
    assert found["people"] == [margaret]
    # the search, the names and what it asked for, the fuzzy match's data, its commitments
    searches = 1 if db.startswith("postgresql") else 2
    assert len([s for s in statements if "memory" in s]) == searches + 3, statements


def test_a_first_name_is_the_person_named_in_full_or_attending_not_a_namesake(db: str) -> None:
    teach(
        db,
        ("person", {"name": "Ben Okafor"}),
        ("person", {"name": "Ben Lindqvist"}),
        ("person", {"name": "Dana Xu"}),
        ("person", {"name": "Priya Raman"}),
    )
    said = meeting(
        ("Dana Reyes", "Ben Okafor will send the draft."),
        ("Dana Reyes", "Ben agreed; Dana checks it and Priya signs."),
    )
    with session_scope(db) as session:
        found = recall(session, "acme", said).memory
    # Ben is Ben Okafor, Dana the attendee: only Priya is named by her first name alone
    assert [p["name"] for p in found["people"]] == ["Ben Okafor", "Priya Raman"]


def test_a_first_name_many_people_bear_names_none_of_them(db: str) -> None:
    davids = [("person", {"name": f"David {last}"}) for last in ("Chen", "Ito", "Mora", "Diaz")]
    teach(db, *davids[:2], ("person", {"name": "Gita Rao"}), ("person", {"name": "Gita Roy"}))
    said = meeting(("Dana Reyes", "David will send it and Gita will check it."))
    with session_scope(db) as session:
        found = recall(session, "acme", said).memory
    assert [p["name"] for p in found["people"]] == [
        "David Chen", "David Ito", "Gita Rao", "Gita Roy",
    ]  # fmt: skip
    teach(db, *davids[2:])  # four Davids: "David" alone is none the model could tell apart
    with session_scope(db) as session:
        found = recall(session, "acme", said).memory
    assert [p["name"] for p in found["people"]] == ["Gita Rao", "Gita Roy"]


def test_a_name_said_as_spelled_is_no_misspelling_of_another(db: str) -> None:
    teach(db, ("person", {"name": "Jon Hanson"}), ("person", {"name": "Jon Hansen"}))
    said = meeting(("Dana Reyes", "Jon Hansen owns the rollout."))
    with session_scope(db) as session:
        found = recall(session, "acme", said).memory
    assert [p["name"] for p in found["people"]] == ["Jon Hansen"]
    said = meeting(("Dana Reyes", "Jon Hansenn owns the rollout."))  # near both: both
    with session_scope(db) as session:
        found = recall(session, "acme", said).memory
    assert [p["name"] for p in found["people"]] == ["Jon Hansen", "Jon Hanson"]


def test_recall_stays_within_its_token_budget_keeping_attendees_first(db: str) -> None:
    teach(db, ("person", {"name": "Ray Holt", "email": "ray@acme.io"}))
    teach(db, *(("term", {"name": f"Widget{k}", "meaning": "a product " * 8}) for k in range(40)))
    said = meeting(
        ("Ray Holt", " ".join(f"Widget{k}" for k in range(40))),
        attendees=[{"name": "Ray Holt", "email": "ray@acme.io"}],
    )
    with session_scope(db) as session:
        tight = recall(session, "acme", said, budget_tokens=120)
        roomy = recall(session, "acme", said, budget_tokens=5000)
    assert tight.tokens <= 120 < roomy.tokens
    assert tight.left_out > 0 and roomy.left_out == 0
    assert tight.memory["people"] == [{"name": "Ray Holt", "email": "ray@acme.io"}]
    assert len(roomy.memory["terms"]) == 40


def test_the_cache_key_survives_unrelated_memory_and_moves_with_related(db: str) -> None:
    llm = LLMSettings()
    said = meeting(("John Smyth", "I'll send the deck about Cooper Netties tomorrow."))

    def key() -> str:
        with session_scope(db) as session:
            profile = meeting_profile(session, "acme", {"company": "Acme"}, said)
        return extraction_key(llm, "transcript-hash", profile)

    bare = key()
    assert bare == extraction_key(llm, "transcript-hash", {"company": "Acme"})  # no memory
    teach(db, ("person", JON))
    with_jon = key()
    teach(db, ("person", {"name": "Ray Holt"}), ("term", {"name": "Snowflake"}))
    teach(db, ("person", {"name": "Amy Santiago"}), org="globex")
    assert key() == with_jon != bare  # unrelated people and other orgs change nothing
    teach(db, ("term", KUBERNETES))
    assert key() != with_jon  # a term the meeting says is recalled, and counts


# -- what extraction makes of it ------------------------------------------------------
def test_grounding_resolves_an_alias_to_the_remembered_person_with_their_email(db: str) -> None:
    teach(db, ("person", JON))
    said = meeting(("John Smyth", "I'll send the pricing sheet tomorrow."))
    item = ActionItem(
        title="Send the pricing sheet", description=None, owner="John Smyth", owner_email=None,
        due_date=None, priority=None, confidence=0.9, evidence="I'll send the pricing sheet",
    )  # fmt: skip
    with session_scope(db) as session:
        profile = meeting_profile(session, "acme", {}, said)
    without = ground([item], None, said, {}).action_items[0]
    remembered = ground([item], None, said, profile).action_items[0]
    assert (without.owner, without.owner_email) == ("John Smyth", None)
    assert (remembered.owner, remembered.owner_email) == ("Jon Smith", "jon@acme.io")


def test_the_rules_model_writes_remembered_names_and_spellings(db: str) -> None:
    teach(db, ("person", JON), ("term", KUBERNETES))
    said = meeting(("John Smyth", "I'll send the cooper netties runbook by Friday."))
    with session_scope(db) as session:
        profile = meeting_profile(session, "acme", {}, said)
    utterances = list(enumerate(said.transcript))
    before = answer(render_messages("action_items", "v2", said, utterances, {}), None)
    after = answer(render_messages("action_items", "v2", said, utterances, profile), None)
    assert before["action_items"][0]["owner"] == "John Smyth"
    item = after["action_items"][0]
    assert (item["owner"], item["owner_email"]) == ("Jon Smith", "jon@acme.io")
    assert "Kubernetes" in item["title"]


def test_a_meeting_that_reports_work_done_closes_the_open_commitment(db: str) -> None:
    teach(db, ("person", JON))
    teach(
        db,
        ("commitment", {"title": "Send the revised proposal", "owner": "Jon Smith"}),
        ("commitment", {"title": "Book the onsite workshop", "owner": "jon@acme.io"}),
    )
    said = meeting(
        ("Dana Reyes", "Did the revised proposal go out?"),
        ("John Smyth", "Yes, I sent it on Monday. I haven't booked the workshop yet."),
    )
    with session_scope(db) as session:
        profile = meeting_profile(session, "acme", {}, said)
        proposal = session.scalars(
            select(MemoryEntry).where(MemoryEntry.name == "Send the revised proposal")
        ).one()
    closures = find_closures(said, profile)
    assert [(c.commitment, c.evidence) for c in closures] == [
        (f"c-{proposal.id[:8]}", "Yes, I sent it on Monday.")
    ]
    assert find_closures(said, {}) == []


def test_a_meeting_recalls_no_commitment_made_after_it_started(db: str) -> None:
    teach(db, ("person", JON))
    teach(
        db,
        ("commitment", {"title": "Send the deck", "owner": "Jon", "since": "2026-11-10T09:00Z"}),
        ("commitment", {"title": "Send the quote", "owner": "Jon", "since": "2026-11-20T09:00Z"}),
    )
    said = meeting(("John Smyth", "Hello."))  # on 2026-11-17: a redelivery, days later
    with session_scope(db) as session:
        found = recall(session, "acme", said).memory
    assert [c["title"] for c in found["commitments"]] == ["Send the deck"]


def test_the_lexical_index_follows_edits_and_deletes(db: str) -> None:
    (jon,) = teach(db, ("person", JON))
    with session_scope(db) as session:
        memory.edit_entry(session, "acme", jon, {"aliases": ["Jonno"]})
    said = meeting(("Dana Reyes", "Jonno will do it."))
    old = meeting(("Dana Reyes", "John Smyth will do it."))
    with session_scope(db) as session:
        assert recall(session, "acme", said).memory["people"][0]["name"] == "Jon Smith"
        assert "people" not in recall(session, "acme", old).memory
        if session.get_bind().dialect.name == "sqlite":
            assert session.execute(text("SELECT count(*) FROM memory_fts")).scalar() == 1


def test_the_text_vector_is_stored_once_and_survives_a_downgrade_and_upgrade(db: str) -> None:
    # Recall must not parse every candidate row's text again: PostgreSQL keeps the vector.
    (jon,) = teach(db, ("person", JON))
    vector = "SELECT search_vector::text FROM memory_entries WHERE id = :id"
    downgrade(alembic_config(db), "0009_memory_learning")
    upgrade(db)
    with session_scope(db) as session:
        if session.get_bind().dialect.name == "postgresql":
            assert "'jon'" in session.execute(text(vector), {"id": jon}).scalar_one()
            indexes = "SELECT indexname FROM pg_indexes WHERE tablename = 'memory_entries'"
            names = set(session.execute(text(indexes)).scalars())
            wanted = {"search_vector", "recent", "source"}
            assert {f"ix_memory_entries_{name}" for name in wanted} <= names
            assert not {"ix_memory_entries_search", "ix_memory_entries_org_id"} & names
        said = meeting(("Dana Reyes", "Jon will send it."))
        assert recall(session, "acme", said).memory["people"][0]["name"] == "Jon Smith"


def test_a_rule_is_the_planners_and_only_free_text_preferences_reach_the_prompt(db: str) -> None:
    rule = {"text": "legal review goes to Legal", "then": {"set_target": {"project": "Legal"}}}
    teach(db, ("preference", rule), ("preference", {"text": "Write due dates in ISO form"}))
    with session_scope(db) as session:
        recalled = recall(session, "acme", meeting(("Dana Reyes", "Hello."))).memory
    assert recalled["preferences"] == [{"text": "Write due dates in ISO form"}]


def test_a_recall_reads_memory_in_few_statements_and_an_emptied_memory_recalls_nothing(
    db: str,
) -> None:
    jon, priya, kube = teach(db, ("person", JON), ("person", PRIYA), ("term", KUBERNETES))
    teach(db, ("preference", {"text": "Keep recaps short"}))
    said = meeting(
        ("Dana Reyes", "Jon and Pria will check the Kubernetes rollout."),
        attendees=[{"name": "Priya Raman", "email": "priya@acme.io"}],
    )
    with session_scope(db) as session:
        recall(session, "acme", said)  # the org is known to have memory from here on
    with statements_sent(engine_for(db)) as statements, session_scope(db) as session:
        found = recall(session, "acme", said).memory
    assert [p["name"] for p in found["people"]] == ["Jon Smith", "Priya Raman"]
    assert [t["name"] for t in found["terms"]] == ["Kubernetes"]
    assert found["preferences"] == [{"text": "Keep recaps short"}]
    # the lexical search (people and terms, then commitments: one statement on PostgreSQL,
    # two elsewhere), one read of what it found with the attendees, the names to match
    # fuzzily and the preferences, and the open commitments of the people recalled
    searches = 1 if db.startswith("postgresql") else 2
    assert len([s for s in statements if "memory" in s]) == searches + 2, statements
    with session_scope(db) as session:
        for entry in (jon, priya, kube):
            memory.delete_entry(session, "acme", entry)
        for row in session.scalars(select(MemoryEntry).where(MemoryEntry.org_id == "acme")):
            session.delete(row)
    with session_scope(db) as session:
        assert recall(session, "acme", said).memory == {}


def test_one_search_for_names_and_commitments_finds_what_two_did_across_word_batches(
    db: str,
) -> None:
    teach(db, ("person", JON), ("term", KUBERNETES))
    teach(db, *(("commitment", {"title": f"Send the proposal draft{k}"}) for k in range(5)))
    filler = [f"word{k}" for k in range(2 * BATCH)]  # the names come in the third batch
    words = words_of([" ".join(filler), "Jon sends the Kubernetes proposal draft3"])
    with session_scope(db) as session:
        both = names_and_commitments(session, "acme", words, 500, 3)
        named = lexical_hits(session, "acme", words, 500, kinds=("person", "term"))
        open_ = lexical_hits(
            session, "acme", words, 3, kinds=("commitment",), status="open", newest=True
        )
    # people and terms (equal ranks in any order), and the newest open commitments
    assert sorted(h.id for h in both.names) == sorted(h.id for h in named)
    assert [tuple(row[:3]) for row in both.commitments] == [
        (h.id, h.name, h.account) for h in open_
    ]
    assert sorted(h.name for h in named) == ["Jon Smith", "Kubernetes"] and len(open_) == 3


@pytest.fixture
def stale(postgres_url: str) -> str:
    """An org whose statistics were taken before it had open commitments (a new database:
    what autovacuum saw first), and which has 1,500 of them now."""
    upgrade(postgres_url)
    with session_scope(postgres_url) as session:
        orgs.create_org(session, "acme", "Acme")
        orgs.create_org(session, "globex", "Globex")
    teach(postgres_url, ("person", JON))
    with session_scope(postgres_url) as session:
        session.execute(text("ANALYZE memory_entries"))
    teach(postgres_url, *(("commitment", {"title": f"Send the deck w{k}"}) for k in range(1500)))
    return postgres_url


def _rows_read(url: str, reads: Any) -> int:
    """Rows of memory_entries PostgreSQL read (kept or filtered out) for the statements
    `reads(session)` sends, each run again under EXPLAIN ANALYZE."""
    statements: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "memory_entries" in statement:
            statements.append((statement, params))

    engine = engine_for(url)
    event.listen(engine, "before_cursor_execute", seen)
    try:
        with session_scope(url) as session:
            reads(session)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    read = 0
    with engine.connect() as connection:
        cursor = connection.connection.driver_connection.cursor()
        for statement, params in statements:
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, params)
            plan = cursor.fetchone()[0][0]["Plan"]
            scans = [n for n in _nodes(plan) if n.get("Relation Name") == "memory_entries"]
            read += sum(n["Actual Rows"] + n.get("Rows Removed by Filter", 0) for n in scans)
    return read


@pytest.mark.integration
def test_recall_reads_only_what_it_keeps_whatever_the_statistics(stale: str) -> None:
    # when a meeting's words match every open commitment and the person
    found: list[Any] = []
    read = _rows_read(
        stale, lambda s: found.append(names_and_commitments(s, "acme", ["send", "jon"], 500, 100))
    )
    # expect the newest 100 read in the index's order (not all 1,500 read and sorted), and
    # the people and terms matched beside them read none of the commitments
    assert len(found[0].commitments) == 100 and len(found[0].names) == 1
    assert read <= 110, f"read {read} of 1,501 entries for 101"


@pytest.mark.integration
def test_recall_reads_the_entries_it_wants_whole_by_key_and_only_the_orgs(stale: str) -> None:
    with session_scope(stale) as session:
        jon = session.scalars(select(MemoryEntry.id).where(MemoryEntry.kind == "person")).one()
    (other,) = teach(
        stale, ("person", {"name": "Jon Else", "email": "jon@globex.io"}), org="globex"
    )
    # when recall reads the entries it wants whole: its own person and another org's
    got: list[Any] = []
    read = _rows_read(stale, lambda s: got.append(wanted_whole(s, "acme", {jon, other}, set())))
    # expect its own read by key (not the org's 1,500 commitments to find one), the other
    # org's never recalled
    assert set(got[0].loaded) == {jon}
    assert read <= 5, f"read {read} entries for 2"


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)
