"""Exactly-once effects: the ledger's claims and leases, in-doubt ops, re-worded and vanished
items, dead letters and the sweeper, against the sandbox with the real SDKs.

Stages run as plain functions (no broker), so each story controls its interleavings.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from dramatiq import Message
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from admin.meeting_store import store_meeting
from cli import app
from connectors.base import Connector, Op, Receipt
from connectors.errors import Transient
from intake.app import create_app
from meetsync.bootstrap import apply_mapping, seed_demo
from meetsync.db.migrate import upgrade
from meetsync.db.models import OpRecord, utcnow
from meetsync.db.session import engine_for
from meetsync.models import MeetingOutput
from meetsync.settings import LimitOverride, get_settings
from sandbox.client import SandboxClient
from sandbox.server import Sandbox
from sandbox.settings_for import settings_for
from tests.admin_cli import admin_auth
from tests.contract.case_asana import task_key
from tests.sql_log import statements_sent
from tests.test_end_to_end import MAPPING, MEETING
from tests.worker_run import run_message
from workers import ledger, pushing, stages
from workers.actors import Pipeline, declare
from workers.broker import make_broker
from workers.runtime import Runtime
from workers.sweeper import sweep

QUESTIONNAIRE = "I'll send you the security questionnaire by Friday."
REWORDED = "I'll get the completed security questionnaire over to you by Friday."
SALES = Path(__file__).resolve().parents[1] / "mappings" / "examples" / "sales.yaml"
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SANDBOX_LINE = "I will set up a sandbox workspace for your data team by next Tuesday."


def make_runtime(sandbox: Sandbox, database_url: str) -> Runtime:
    """A migrated database seeded with org acme and the demo mapping."""
    settings = settings_for(sandbox, database_url=database_url, broker_url="stub")
    upgrade(settings.database_url)
    with Runtime(settings).session() as session:
        seed_demo(session, settings, MAPPING)
    return Runtime(settings)


@pytest.fixture
def runtime(clean_sandbox: Sandbox, tmp_path: Path) -> Runtime:
    return make_runtime(clean_sandbox, f"sqlite:///{tmp_path}/ledger.db")


def use_mapping(runtime: Runtime, mapping: Path, on_missing: dict[str, str]) -> None:
    """Make `mapping` the org's, with `on_missing` set on the named destinations."""
    body = mapping.read_text()
    for destination, policy in on_missing.items():
        head = f"  - name: {destination}\n"
        assert head in body
        body = body.replace(head, f"{head}    on_missing: {policy}\n", 1)
    with runtime.session() as session:
        apply_mapping(session, "acme", body)


def meeting_status(runtime: Runtime, meeting_id: str) -> dict[str, Any]:
    """GET /v1/meetings/{id} as a person sees it."""
    app = create_app(runtime.settings, declare(make_broker("stub"), runtime))
    with TestClient(app) as http:
        answer = http.get(f"/v1/meetings/{meeting_id}", headers=admin_auth(runtime.settings))
    assert answer.status_code == 200, answer.text
    status: dict[str, Any] = answer.json()
    return status


def edited(meeting: MeetingOutput, old: str, new: str | None) -> MeetingOutput:
    """The meeting with one line re-worded, or dropped when `new` is None."""
    lines = [
        u.model_copy(update={"text": new}) if u.text == old else u
        for u in meeting.transcript
        if not (u.text == old and new is None)
    ]
    return meeting.model_copy(update={"transcript": lines})


def deliver(runtime: Runtime, meeting: MeetingOutput) -> tuple[str, list[pushing.Planned]]:
    """Intake, extract and plan one delivery; the meeting id and the ops to push."""
    with runtime.session() as session:
        meeting_id = store_meeting(session, meeting).meeting_id
    stages.extract(runtime, meeting_id)
    return meeting_id, stages.plan(runtime, meeting_id)


def push_all(runtime: Runtime, planned: list[pushing.Planned]) -> list[str]:
    return [pushing.push(runtime, p.key).state for p in planned]


def asana_tasks(sandbox: Sandbox) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = sandbox.admin("asana").state()["tasks"]
    return tasks


def row_of(runtime: Runtime, key: str) -> OpRecord:
    with runtime.session() as session:
        row = session.get(OpRecord, key)
        assert row is not None
        return row


def only_asana(planned: list[pushing.Planned]) -> list[pushing.Planned]:
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
        pushing.push(runtime, first.key)
    in_doubt = row_of(runtime, first.key)
    outcome = pushing.push(runtime, first.key)

    # expect one task, found by its external gid and recorded, not a second create
    assert in_doubt.state == "sending" and in_doubt.lease_until == 0.0
    assert outcome.state == "done"
    ours = [t for t in asana_tasks(clean_sandbox) if task_key(t) == first.key]
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
    outcome = pushing.push(runtime, first.key)

    # expect it to come back later without writing anything
    assert outcome.state == "busy" and outcome.retry_after is not None
    assert 0 < outcome.retry_after <= runtime.settings.retry.busy_backoff_ms / 1000
    assert asana_tasks(clean_sandbox) == []

    # and once the holder's lease runs out (it died), the op is in doubt: found, then written
    with runtime.session() as session:
        session.execute(update(OpRecord).where(OpRecord.key == first.key).values(lease_until=1.0))
    assert pushing.push(runtime, first.key).state == "done"
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
    before = {task_key(t): t for t in asana_tasks(clean_sandbox)}
    assert len(before) == 2

    # when the notes pipeline sends an edit where the questionnaire promise is re-worded
    _, replanned = deliver(runtime, edited(MEETING, QUESTIONNAIRE, REWORDED))
    push_all(runtime, replanned)

    # expect the same two tasks, the questionnaire one renamed in place
    after = {task_key(t): t for t in asana_tasks(clean_sandbox)}
    assert after.keys() == before.keys()
    renamed = [t for t in after.values() if t["name"] != before[task_key(t)]["name"]]
    assert [t["name"] for t in renamed] == ["Get the completed security questionnaire over to Hank"]
    assert renamed[0]["gid"] == before[task_key(renamed[0])]["gid"]


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
    use_mapping(runtime, MAPPING, {"customer-followups": policy})
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
    tasks = {task_key(t): t for t in asana_tasks(clean_sandbox)}
    assert len(tasks) == 2
    assert tasks[gone[0].key]["completed"] is completed
    assert [t["completed"] for k, t in tasks.items() if k != gone[0].key] == [False]


@pytest.mark.parametrize(
    ("policy", "disposition", "outcome"),
    [
        pytest.param("keep", "missing", "kept", id="keep"),
        pytest.param("close", "closed", "closed", id="close"),
    ],
)
def test_the_meeting_status_shows_which_item_disappeared_and_what_was_done(
    runtime: Runtime, clean_sandbox: Sandbox, policy: str, disposition: str, outcome: str
) -> None:
    # given the customer follow-ups destination with on_missing: <policy>, pushed once
    use_mapping(runtime, MAPPING, {"customer-followups": policy})
    meeting_id, planned = deliver(runtime, MEETING)
    push_all(runtime, planned)
    assert meeting_status(runtime, meeting_id)["removed_items"] == []

    # when an edit drops the sandbox-workspace promise and the re-run is pushed
    _, replanned = deliver(runtime, edited(MEETING, SANDBOX_LINE, None))
    push_all(runtime, replanned)
    status = meeting_status(runtime, meeting_id)

    # expect the item named among removed items with what was done, and on its push
    (removed,) = status["removed_items"]
    assert "sandbox workspace" in removed["title"].lower()
    assert removed["outcome"] == outcome and removed["disposition"] == disposition
    assert (removed["provider"], removed["destination"]) == ("asana", "customer-followups")
    assert removed["state"] == "done" and removed["url"]
    pushes = {p["key"]: p for p in status["pushes"]}
    assert pushes[removed["key"]]["disposition"] == disposition
    followups = [p for p in status["pushes"] if p["destination"] == "customer-followups"]
    assert len(followups) == 2 and all(p["title"] for p in followups)
    assert [p["disposition"] for p in followups if p["key"] != removed["key"]] == [None]


def record_status(sandbox: Sandbox, row: OpRecord) -> Any:
    """The open/closed state of the record an item op wrote: Asana `completed`, Task Status."""
    if row.connector == "asana":
        (task,) = [t for t in asana_tasks(sandbox) if task_key(t) == row.key]
        return task["completed"]
    records = SandboxClient(sandbox.origins["salesforce"], sandbox.ca_file).state()["records"]
    (task,) = [t for t in records["Task"] if t["Id"] == row.external_id]
    return task["Status"]


def record_count(sandbox: Sandbox, connector: str) -> int:
    if connector == "asana":
        return len(asana_tasks(sandbox))
    records = SandboxClient(sandbox.origins["salesforce"], sandbox.ca_file).state()["records"]
    return len(records["Task"])


@pytest.mark.parametrize(
    ("mapping", "destination", "opened", "closed"),
    [
        pytest.param(MAPPING, "customer-followups", False, True, id="asana-task"),
        pytest.param(SALES, "followup-tasks", "Not Started", "Completed", id="salesforce-task"),
    ],
)
def test_a_closed_item_that_comes_back_is_reopened_not_duplicated(
    runtime: Runtime,
    clean_sandbox: Sandbox,
    mapping: Path,
    destination: str,
    opened: Any,
    closed: Any,
) -> None:
    # given a destination with on_missing: close, whose sandbox-workspace record was closed
    # when an edit dropped that promise
    use_mapping(runtime, mapping, {destination: "close"})
    meeting_id, planned = deliver(runtime, MEETING)
    push_all(runtime, planned)
    _, dropped = deliver(runtime, edited(MEETING, SANDBOX_LINE, None))
    push_all(runtime, dropped)
    with runtime.session() as session:
        (gone,) = session.scalars(
            select(OpRecord).where(
                OpRecord.meeting_id == meeting_id, OpRecord.disposition.is_not(None)
            )
        ).all()
    assert gone.disposition == "closed" and gone.destination == destination
    assert record_status(clean_sandbox, gone) == closed
    count = record_count(clean_sandbox, gone.connector)

    # when a later edit brings the promise back, and that meeting is planned again unchanged
    _, back = deliver(runtime, MEETING)
    push_all(runtime, back)
    rerun = stages.plan(runtime, meeting_id)

    # expect the same record reopened (no second one), reported as reopened, nothing removed
    again = row_of(runtime, gone.key)
    assert again.disposition == "reopened" and again.state == "done"
    assert again.external_id == gone.external_id
    assert record_status(clean_sandbox, again) == opened
    assert record_count(clean_sandbox, gone.connector) == count
    assert meeting_status(runtime, meeting_id)["removed_items"] == []
    assert gone.key in {p.key for p in back} and rerun == []


def test_dead_letters_are_listed_shown_and_replayed_once(
    runtime: Runtime, clean_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an Asana op refused permanently (the provider answers 400 to the create)
    _, planned = deliver(runtime, MEETING)
    first = only_asana(planned)[0]
    clean_sandbox.admin("asana").arm("error", status=400, method="POST", path="/api/1.0/tasks")
    assert pushing.push(runtime, first.key).state == "failed"
    monkeypatch.setenv("MEETSYNC_DATABASE_URL", runtime.settings.database_url)

    # when an operator lists, shows and retries it, twice
    listed = cli("dlq", "list")
    shown = cli("dlq", "show", first.key[:12])
    replayed = cli("dlq", "retry", first.key)
    again = cli("dlq", "retry", first.key)
    outcome = pushing.push(runtime, first.key)  # what the worker does with the replay

    # expect the reason shown, one replay in doubt, and one task
    assert first.key in listed and "failed" in listed and "asana/upsert_task" in listed
    assert '"state": "failed"' in shown and '"attempts": 1' in shown
    assert "replayed 1 op" in replayed
    assert "replayed 0 ops; 1 not dead letters" in again
    assert outcome.state == "done"
    assert len([t for t in asana_tasks(clean_sandbox) if task_key(t) == first.key]) == 1
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

    # expect every op enqueued once, on its connector's queue: the meeting's ops for one
    # connection in one message
    queued = {name: queued_keys(pipeline, name) for name in ("asana", "salesforce", "slack")}
    assert first.push == len(planned) and second.total == 0
    assert sorted(k for keys in queued.values() for k in keys) == sorted(p.key for p in planned)
    assert queued["asana"] == [p.key for p in only_asana(planned)]


def queued_keys(pipeline: Pipeline, connector: str) -> list[str]:
    """The op keys the messages on a connector's live push queue carry, in order."""
    queue = pipeline.broker.queues[f"push.{connector}"]  # type: ignore[attr-defined]
    keys: list[str] = []
    for data in list(queue.queue):
        arg = Message.decode(data).args[0]
        keys += [arg] if isinstance(arg, str) else arg
    return keys


def test_a_push_that_must_wait_comes_back_on_the_returns_queue_ahead_of_new_work(
    runtime: Runtime, clean_sandbox: Sandbox
) -> None:
    # given an Asana budget of one task now and the next in 100 s
    limits = LimitOverride(rate=0.01, burst=1)
    throttle = runtime.settings.throttle.model_copy(update={"connectors": {"asana": limits}})
    runtime = Runtime(runtime.settings.model_copy(update={"throttle": throttle}))
    _, planned = deliver(runtime, MEETING)
    tasks = only_asana(planned)
    assert len(tasks) >= 2
    pipeline = declare(make_broker("stub"), runtime)

    # when a worker runs every Asana push of the meeting
    for p in tasks:
        run_message(pipeline.push["asana"].live, p.key, **p.route.options())

    # expect one written, the rest delayed onto the returns queue, none lost or failed
    queues = pipeline.broker.queues  # type: ignore[attr-defined]
    assert len(asana_tasks(clean_sandbox)) == 1
    assert queues["push.asana.returns.DQ"].qsize() == len(tasks) - 1
    assert queues["push.asana"].qsize() == 0
    assert sorted(row_of(runtime, p.key).state for p in tasks) == ["done"] + ["planned"] * (
        len(tasks) - 1
    )
    # and a worker runs those returns before any new push it has fetched
    assert pipeline.push["asana"].returns.priority < pipeline.push["asana"].live.priority


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


class DatabaseDropsAfterApply:
    """A connector whose write lands, then PostgreSQL refuses and drops every connection."""

    def __init__(self, inner: Connector, database: str) -> None:
        self.inner, self.database = inner, database

    def apply(self, op: Op, prior: Receipt | None) -> Receipt:
        receipt = self.inner.apply(op, prior)
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{self.database}" ALLOW_CONNECTIONS false')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (self.database,),
            )
        return receipt

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class DatabaseBackOnRetry(logging.Handler):
    """Lets connections in again once the push reports that recording its receipt failed."""

    def __init__(self, database: str) -> None:
        super().__init__(logging.WARNING)
        self.database, self.failures = database, 0

    def emit(self, record: logging.LogRecord) -> None:
        if "recording receipts failed" not in record.getMessage():
            return
        self.failures += 1
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{self.database}" ALLOW_CONNECTIONS true')


def test_a_write_whose_receipt_met_a_dropped_database_is_recorded_once_it_is_back(
    clean_sandbox: Sandbox, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an Asana op on PostgreSQL, and PostgreSQL dropping every connection right after
    # the task is created (before the push records its receipt), back a moment later
    runtime = make_runtime(clean_sandbox, postgres_url)
    _, planned = deliver(runtime, MEETING)
    first = only_asana(planned)[0]
    database = postgres_url.rsplit("/", 1)[1]
    built = runtime.connectors.get

    def dropping(session: Any, name: str, *, org_id: str) -> Connector:
        connector = built(session, name, org_id=org_id)
        return DatabaseDropsAfterApply(connector, database)  # type: ignore[return-value]

    monkeypatch.setattr(runtime.connectors, "get", dropping)
    back = DatabaseBackOnRetry(database)
    logging.getLogger("workers.pushing").addHandler(back)

    # when the op is pushed
    try:
        outcome = pushing.push(runtime, first.key)
    finally:
        logging.getLogger("workers.pushing").removeHandler(back)

    # expect the receipt recorded by the same attempt, not left in doubt for the lease
    assert back.failures >= 1  # the database really was away when the push recorded
    row = row_of(runtime, first.key)
    assert outcome.state == "done"
    assert (row.state, row.attempts, row.applied_hash) == ("done", 1, row.payload_hash)
    ours = [t for t in asana_tasks(clean_sandbox) if task_key(t) == first.key]
    assert len(ours) == 1 and row.external_id == ours[0]["gid"]


def test_a_push_reads_its_op_row_once_per_delivery(
    runtime: Runtime, clean_sandbox: Sandbox
) -> None:
    # given a planned task, and every statement the database is sent from now on
    _, planned = deliver(runtime, MEETING)
    task = only_asana(planned)[0]
    pipeline = declare(make_broker("stub"), runtime)
    with statements_sent(engine_for(runtime.settings.database_url)) as statements:
        # when a worker delivers its push, through the throttle middleware
        run_message(pipeline.push["asana"].live, task.key, **task.route.options())

    # expect it written, with one read of the op row and conditional writes after
    assert row_of(runtime, task.key).state == "done"
    reads = [s for s in statements if s.startswith("SELECT") and 'WHERE ops."key" ' in s]
    assert len(reads) == 1, reads
    assert len([s for s in statements if s.startswith("UPDATE ops")]) == 2  # claim, record


def test_a_meeting_whose_llm_stays_unreachable_fails_visibly_and_comes_back_on_replay(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an LLM endpoint nobody answers on, and a stored meeting
    llm = runtime.settings.llm.model_copy(update={"base_url": "http://127.0.0.1:9/v1"})
    down = Runtime(runtime.settings.model_copy(update={"llm": llm}))
    with down.session() as session:
        meeting_id = store_meeting(session, MEETING).meeting_id
    pipeline = declare(make_broker("stub"), down)
    last = down.settings.retry.max_retries

    # when an early attempt fails, then the last one does too
    with pytest.raises(Exception, match=r"(?i)connect"):
        run_message(pipeline.extract.live, meeting_id, retries=0)
    assert meeting_status(runtime, meeting_id)["status"] == "extracting"
    run_message(pipeline.extract.live, meeting_id, retries=last)

    # expect the meeting failed with the reason, in the API and among the dead letters
    status = meeting_status(runtime, meeting_id)
    assert status["status"] == "failed"
    assert status["error"].startswith("retries exhausted: LLMTransient")
    monkeypatch.setenv("MEETSYNC_DATABASE_URL", runtime.settings.database_url)
    assert f"meeting {meeting_id}\tfailed" in cli("dlq", "list")

    # and a replay, once the LLM is back, to extract and plan it as if nothing happened
    assert "replayed 1 meeting" in cli("dlq", "retry", "--meeting", meeting_id)
    assert meeting_status(runtime, meeting_id)["status"] == "received"
    stages.extract(runtime, meeting_id)
    assert stages.plan(runtime, meeting_id)
    assert meeting_status(runtime, meeting_id)["status"] == "pushing"


def test_planning_from_what_extraction_handed_over_plans_what_a_replan_would(
    runtime: Runtime, clean_sandbox: Sandbox
) -> None:
    # given a meeting extracted, its payload and insights handed to planning in memory
    with runtime.session() as session:
        meeting_id = store_meeting(session, MEETING).meeting_id
    extracted = stages.extract(runtime, meeting_id)
    assert extracted.payload is not None and extracted.insights is not None
    with statements_sent(engine_for(runtime.settings.database_url)) as statements:
        handed = stages.plan(runtime, meeting_id, extracted=extracted)

    # expect neither the meeting's payload nor its insights read back from the database
    reads = [s for s in statements if s.startswith("SELECT")]
    assert not any("meetings.payload" in s or "insights.insights" in s for s in reads)
    # and the plan the same as planning from what is stored: the same ops, none new
    with runtime.session() as session:
        again = stages.plan(runtime, meeting_id, session=session)
        session.rollback()
    assert handed and {p.key for p in again} <= {p.key for p in handed}
    with runtime.session() as session:
        rows = session.scalars(select(OpRecord).where(OpRecord.meeting_id == meeting_id)).all()
    assert {r.key for r in rows} == {p.key for p in handed}


@pytest.mark.integration
def test_a_batch_claim_on_postgresql_takes_only_the_ops_still_as_read(
    clean_sandbox: Sandbox, postgres_url: str
) -> None:
    # given a meeting's ops read by two pushes, one of which then claims two of them
    runtime = make_runtime(clean_sandbox, postgres_url)
    _, planned = deliver(runtime, MEETING)
    keys = [p.key for p in planned]
    assert len(keys) >= 3
    with runtime.session() as session:
        stale = {key: _row(session, key) for key in keys}
        session.expunge_all()
    with runtime.session() as session:
        first = ledger.claim_many(session, [_row(session, k) for k in keys[:2]], 60.0, time.time())

    # when the other claims all of them as it read them
    with runtime.session() as session:
        second = ledger.claim_many(session, list(stale.values()), 60.0, time.time())

    # expect the ops the first took to be busy for the second, the rest claimed once each
    assert all(isinstance(first[k], ledger.Claim) for k in keys[:2])
    assert all(isinstance(second[k], ledger.Busy) for k in keys[:2])
    assert all(isinstance(second[k], ledger.Claim) for k in keys[2:])
    assert {row_of(runtime, k).attempts for k in keys} == {1}
    # and a claim from a clean state owes no lookup
    claimed = second[keys[2]]
    assert isinstance(claimed, ledger.Claim)
    assert claimed.doubt_since is None  # claimed from planned: nothing to look up


def _gets_of_tasks(sandbox: Sandbox) -> int:
    requests: dict[str, int] = sandbox.admin("asana").stats()["requests"]
    return requests.get("GET /api/1.0/tasks", 0)


def test_a_batch_left_in_doubt_by_a_crash_is_looked_up_with_one_scan(
    runtime: Runtime, clean_sandbox: Sandbox
) -> None:
    # given a meeting's Asana ops (a personal access token: tasks carry notes markers)
    # claimed by a push that wrote the first, then died before recording anything
    _, planned = deliver(runtime, MEETING)
    keys = [p.key for p in only_asana(planned)]
    assert len(keys) >= 2
    with runtime.session() as session:
        claims = ledger.claim_many(session, [_row(session, k) for k in keys], 60.0, time.time())
        connector = runtime.connectors.get(session, "acme-asana", org_id="acme")
    for key in keys[:1]:
        claim = claims[key]
        assert isinstance(claim, ledger.Claim)
        connector.apply(claim.op, None)
    with runtime.session() as session:  # the dead push's lease runs out
        session.execute(update(OpRecord).where(OpRecord.key.in_(keys)).values(lease_until=0.0))
    scans_before = _gets_of_tasks(clean_sandbox)

    # when the batch is pushed again
    pushed = pushing.push_ops(runtime, keys)

    # expect one listing of the project for all of them (not one per op in doubt), the one
    # written found and recorded, the rest written once
    assert _gets_of_tasks(clean_sandbox) - scans_before == 1
    assert {pushed.states[k] for k in keys} == {"done"}
    by_key: dict[str, int] = {}
    for task in asana_tasks(clean_sandbox):
        by_key[task_key(task)] = by_key.get(task_key(task), 0) + 1
    assert [by_key.get(k) for k in keys] == [1] * len(keys)


def test_an_op_in_doubt_is_looked_up_from_its_first_attempt_not_its_planning(
    runtime: Runtime,
) -> None:
    # given an op planned, then claimed for the first time an hour later (a backlog)
    _, planned = deliver(runtime, MEETING)
    key = only_asana(planned)[0].key
    first_try = time.time() + 3600
    with runtime.session() as session:
        first = ledger.claim(session, _row(session, key), 60.0, first_try)
    assert isinstance(first, ledger.Claim) and first.doubt_since is None  # nothing owed

    # when its lease runs out in doubt and two later attempts claim it in turn
    with runtime.session() as session:
        second = ledger.claim(session, _row(session, key), 60.0, first_try + 120)
    with runtime.session() as session:
        third = ledger.claim(session, _row(session, key), 60.0, first_try + 240)

    # expect both to look back to the first attempt's claim: no write of it is older
    for claim in (second, third):
        assert isinstance(claim, ledger.Claim) and claim.in_doubt
        assert claim.doubt_since is not None
        assert abs(claim.doubt_since.timestamp() - first_try) < 1e-3
