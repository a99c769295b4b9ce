"""Exactly-once effects: the ledger's claims and leases, in-doubt ops, re-worded and vanished
items, dead letters and the sweeper, against the sandbox with the real SDKs.

Stages run as plain functions (no broker), so each story controls its interleavings.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from connectors.errors import Transient
from intake.store import store_meeting
from meetsync.bootstrap import apply_mapping, seed_demo
from meetsync.cli import app
from meetsync.db.migrate import upgrade
from meetsync.db.models import OpRecord, utcnow
from meetsync.models import MeetingOutput
from meetsync.settings import get_settings
from sandbox.server import Sandbox
from sandbox.settings_for import settings_for
from tests.test_end_to_end import MAPPING, MEETING
from workers import ledger, stages
from workers.actors import declare
from workers.broker import make_broker
from workers.runtime import Runtime
from workers.sweeper import sweep

QUESTIONNAIRE = "I'll send you the security questionnaire by Friday."
REWORDED = "I'll get the completed security questionnaire over to you by Friday."
SANDBOX_LINE = "I will set up a sandbox workspace for your data team by next Tuesday."


@pytest.fixture
def runtime(clean_sandbox: Sandbox, tmp_path: Path) -> Runtime:
    settings = settings_for(
        clean_sandbox, database_url=f"sqlite:///{tmp_path}/ledger.db", broker_url="stub"
    )
    upgrade(settings.database_url)
    with Runtime(settings).session() as session:
        seed_demo(session, settings, MAPPING)
    return Runtime(settings)


def edited(meeting: MeetingOutput, old: str, new: str | None) -> MeetingOutput:
    """The meeting with one line re-worded, or dropped when `new` is None."""
    lines = [
        u.model_copy(update={"text": new}) if u.text == old else u
        for u in meeting.transcript
        if not (u.text == old and new is None)
    ]
    return meeting.model_copy(update={"transcript": lines})


def deliver(runtime: Runtime, meeting: MeetingOutput) -> tuple[str, list[stages.Planned]]:
    """Intake, extract and plan one delivery; the meeting id and the ops to push."""
    with runtime.session() as session:
        meeting_id = store_meeting(session, meeting).meeting_id
    stages.extract(runtime, meeting_id)
    return meeting_id, stages.plan(runtime, meeting_id)


def push_all(runtime: Runtime, planned: list[stages.Planned]) -> list[str]:
    return [stages.push(runtime, p.key).state for p in planned]


def asana_tasks(sandbox: Sandbox) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = sandbox.admin("asana").state()["tasks"]
    return tasks


def row_of(runtime: Runtime, key: str) -> OpRecord:
    with runtime.session() as session:
        row = session.get(OpRecord, key)
        assert row is not None
        return row


def only_asana(planned: list[stages.Planned]) -> list[stages.Planned]:
    return [p for p in planned if p.connector == "asana"]


def test_a_write_whose_response_was_lost_is_found_not_written_again(
    runtime: Runtime, clean_sandbox: Sandbox
) -> None:
    # given a planned Asana task whose create lands but whose answer never comes back
    _, planned = deliver(runtime, MEETING)
    first = only_asana(planned)[0]
    clean_sandbox.admin("asana").arm("lost_response", method="POST", path="/api/1.0/tasks")

    # when the push fails in doubt, then runs again (a retry or a redelivery)
    with pytest.raises(Transient):
        stages.push(runtime, first.key)
    in_doubt = row_of(runtime, first.key)
    outcome = stages.push(runtime, first.key)

    # expect one task, found by its external gid and recorded, not a second create
    assert in_doubt.state == "sending" and in_doubt.lease_until == 0.0
    assert outcome.state == "done"
    ours = [t for t in asana_tasks(clean_sandbox) if t["external"]["gid"] == first.key]
    assert len(ours) == 1
    assert row_of(runtime, first.key).external_id == ours[0]["gid"]


def test_a_second_delivery_backs_off_while_the_first_holds_the_op(
    runtime: Runtime, clean_sandbox: Sandbox
) -> None:
    # given a push that has claimed the op and is still writing (its lease is live)
    _, planned = deliver(runtime, MEETING)
    first = only_asana(planned)[0]
    with runtime.session() as session:
        held = ledger.claim(session, _row(session, first.key), 60.0, time.time())
    assert isinstance(held, ledger.Claim) and not held.in_doubt

    # when a second delivery of the same message runs
    outcome = stages.push(runtime, first.key)

    # expect it to come back later without writing anything
    assert outcome.state == "busy" and outcome.retry_after is not None
    assert 0 < outcome.retry_after <= runtime.settings.retry.busy_backoff_ms / 1000
    assert asana_tasks(clean_sandbox) == []

    # and once the holder's lease runs out (it died), the op is in doubt: found, then written
    with runtime.session() as session:
        session.execute(update(OpRecord).where(OpRecord.key == first.key).values(lease_until=1.0))
    assert stages.push(runtime, first.key).state == "done"
    assert len(asana_tasks(clean_sandbox)) == 1
    assert row_of(runtime, first.key).attempts == 2


def test_a_claim_taken_over_after_its_lease_ran_out_no_longer_holds(runtime: Runtime) -> None:
    # given an op claimed by one push whose lease then runs out
    _, planned = deliver(runtime, MEETING)
    key = planned[0].key
    with runtime.session() as session:
        first = ledger.claim(session, _row(session, key), 0.0, time.time())

    # when another push claims it
    with runtime.session() as session:
        second = ledger.claim(session, _row(session, key), 60.0, time.time() + 1)

    # expect the second claim in doubt, and only the second to hold the op
    assert isinstance(first, ledger.Claim) and isinstance(second, ledger.Claim)
    assert second.in_doubt and second.attempt == first.attempt + 1
    row = row_of(runtime, key)
    assert ledger.holds(row, second.attempt) and not ledger.holds(row, first.attempt)


def test_a_reworded_item_updates_its_task_instead_of_adding_one(
    runtime: Runtime, clean_sandbox: Sandbox
) -> None:
    # given a meeting pushed once: two Asana tasks
    _, planned = deliver(runtime, MEETING)
    push_all(runtime, planned)
    before = {t["external"]["gid"]: t for t in asana_tasks(clean_sandbox)}
    assert len(before) == 2

    # when the notes pipeline sends an edit where the questionnaire promise is re-worded
    _, replanned = deliver(runtime, edited(MEETING, QUESTIONNAIRE, REWORDED))
    push_all(runtime, replanned)

    # expect the same two tasks, the questionnaire one renamed in place
    after = {t["external"]["gid"]: t for t in asana_tasks(clean_sandbox)}
    assert after.keys() == before.keys()
    renamed = [t for t in after.values() if t["name"] != before[t["external"]["gid"]]["name"]]
    assert [t["name"] for t in renamed] == ["Get the completed security questionnaire over to Hank"]
    assert renamed[0]["gid"] == before[renamed[0]["external"]["gid"]]["gid"]


@pytest.mark.parametrize(
    ("policy", "disposition", "completed"),
    [
        pytest.param("keep", "missing", False, id="keep"),
        pytest.param("close", "closed", True, id="close"),
    ],
)
def test_an_item_that_disappeared_is_reported_and_kept_or_closed_never_deleted(
    runtime: Runtime, clean_sandbox: Sandbox, policy: str, disposition: str, completed: bool
) -> None:
    # given the customer follow-ups destination with on_missing: <policy>, pushed once
    followups = "    action: upsert_task\n    for_each: action_items\n"
    body = MAPPING.read_text().replace(followups, f"{followups}    on_missing: {policy}\n", 1)
    assert f"on_missing: {policy}" in body
    with runtime.session() as session:
        apply_mapping(session, "acme", body)
    meeting_id, planned = deliver(runtime, MEETING)
    push_all(runtime, planned)

    # when an edit drops the sandbox-workspace promise
    _, replanned = deliver(runtime, edited(MEETING, SANDBOX_LINE, None))
    push_all(runtime, replanned)

    # expect both tasks still there, the vanished one reported and closed only by policy
    with runtime.session() as session:
        rows = session.scalars(
            select(OpRecord).where(
                OpRecord.meeting_id == meeting_id, OpRecord.destination == "customer-followups"
            )
        ).all()
    gone = [r for r in rows if r.disposition is not None]
    assert len(rows) == 2 and [r.disposition for r in gone] == [disposition]
    assert gone[0].state == "done"
    tasks = {t["external"]["gid"]: t for t in asana_tasks(clean_sandbox)}
    assert len(tasks) == 2
    assert tasks[gone[0].key]["completed"] is completed
    assert [t["completed"] for k, t in tasks.items() if k != gone[0].key] == [False]


def test_dead_letters_are_listed_shown_and_replayed_once(
    runtime: Runtime, clean_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an Asana op refused permanently (the provider answers 400 to the create)
    _, planned = deliver(runtime, MEETING)
    first = only_asana(planned)[0]
    clean_sandbox.admin("asana").arm("error", status=400, method="POST", path="/api/1.0/tasks")
    assert stages.push(runtime, first.key).state == "failed"
    monkeypatch.setenv("MEETSYNC_DATABASE_URL", runtime.settings.database_url)

    # when an operator lists, shows and retries it, twice
    listed = cli("dlq", "list")
    shown = cli("dlq", "show", first.key[:12])
    replayed = cli("dlq", "retry", first.key)
    again = cli("dlq", "retry", first.key)
    outcome = stages.push(runtime, first.key)  # what the worker does with the replay

    # expect the reason shown, one replay in doubt, and one task
    assert first.key in listed and "failed" in listed and "asana/upsert_task" in listed
    assert '"state": "failed"' in shown and '"attempts": 1' in shown
    assert "replayed 1 op" in replayed
    assert "replayed 0 ops; 1 not dead letters" in again
    assert outcome.state == "done"
    assert len([t for t in asana_tasks(clean_sandbox) if t["external"]["gid"] == first.key]) == 1
    assert "0 dead letters" in cli("dlq", "list", stderr=True)


def test_the_sweeper_re_enqueues_stuck_work_once(runtime: Runtime) -> None:
    # given a planned meeting whose push messages were lost (a broker restart), long ago
    meeting_id, planned = deliver(runtime, MEETING)
    with runtime.session() as session:
        session.execute(
            update(OpRecord)
            .where(OpRecord.meeting_id == meeting_id)
            .values(updated_at=utcnow() - timedelta(hours=1))
        )
    pipeline = declare(make_broker("stub"), runtime)

    # when two sweeps run one after the other
    first = sweep(pipeline, stuck_after_s=60)
    second = sweep(pipeline, stuck_after_s=60)

    # expect every op enqueued once, on its connector's queue
    queued = {
        name: pipeline.broker.queues[name].qsize()  # type: ignore[attr-defined]
        for name in ("push.asana", "push.salesforce", "push.slack")
    }
    assert first.push == len(planned) and second.total == 0
    assert sum(queued.values()) == len(planned)
    assert queued["push.asana"] == len(only_asana(planned))


def cli(*args: str, stderr: bool = False) -> str:
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, list(args))
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result.stderr if stderr else result.stdout


def _row(session: Any, key: str) -> OpRecord:
    row = session.get(OpRecord, key)
    assert row is not None
    return row
