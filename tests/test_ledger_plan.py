"""Recording a plan: new ledger rows written in one INSERT, yet ordinary rows of the session."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from connectors.base import Op
from meetsync.bootstrap import ensure_org
from meetsync.db.migrate import upgrade
from meetsync.db.models import Meeting, OpRecord
from meetsync.db.session import session_scope
from workers import ledger


def _op(key: str, payload: str = "p1") -> Op:
    return Op(
        key=key, org_id="acme", meeting_id="m1", connector="asana", connection="c",
        action="create_task", target={"project": "P"}, fields={"name": key},
        payload_hash=f"{key}-{payload}",
    )  # fmt: skip


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest) -> str:
    url = str(
        request.getfixturevalue("sqlite_url")
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    upgrade(url)
    with session_scope(url) as session:
        ensure_org(session, "acme", "Acme")
        session.add(
            Meeting(id="m1", org_id="acme", external_id="m1", title="m", payload={},
                    transcript_hash="x", status="planned")
        )  # fmt: skip
    return url


def test_new_and_changed_rows_come_back_in_the_plans_order(url: str) -> None:
    # given a ledger holding b (to be changed) and d (done, unchanged)
    with session_scope(url) as session:
        ledger.record_plan(session, "m1", [_op("b"), _op("d")], 1)
        done = session.get(OpRecord, "d")
        assert done is not None
        done.state = "done"

    # when a plan interleaves new ops with them
    with session_scope(url) as session:
        rows = ledger.record_plan(session, "m1", [_op("a"), _op("b", "p2"), _op("c"), _op("d")], 2)
        # expect the rows to push in the plan's order: new, changed, new (d needs nothing)
        assert [r.key for r in rows] == ["a", "b", "c"]


def test_a_new_row_is_an_ordinary_row_of_the_session(url: str) -> None:
    # when a plan adds rows and a review holds one of them in the same transaction
    with session_scope(url) as session:
        rows = ledger.record_plan(session, "m1", [_op("a"), _op("b")], 3)
        assert session.get(OpRecord, "a") is rows[0]  # the session's own, not a copy
        rows[0].state = "awaiting_review"

    # expect the hold stored, and every column as the ORM's defaults would have set it
    with session_scope(url) as session:
        held, other = (session.get(OpRecord, k) for k in ("a", "b"))
        assert held is not None and other is not None
        assert held.state == "awaiting_review" and other.state == "planned"
        assert other.attempts == 0 and other.mapping_version == 3
        assert other.created_at is not None and other.updated_at is not None
        assert other.target == {"project": "P"} and other.fields == {"name": "b"}
        # no receipt is SQL NULL (not JSON null): "no receipt yet" queries find it
        missing = session.scalars(select(OpRecord.key).where(OpRecord.receipt.is_(None)))
        assert sorted(missing) == ["a", "b"]


def test_a_key_planned_twice_in_one_plan_is_one_row_with_the_last_payload(url: str) -> None:
    with session_scope(url) as session:
        rows = ledger.record_plan(session, "m1", [_op("a"), _op("a", "p2")], 1)
        assert [r.key for r in rows] == ["a"]
    with session_scope(url) as session:
        row = session.get(OpRecord, "a")
        assert row is not None and row.payload_hash == "a-p2"
