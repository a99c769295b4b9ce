"""A meeting's ops for one connection in one push message, each still written at most once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors.errors import Transient
from meetsync.db.session import engine_for
from meetsync.settings import ThrottleSettings
from sandbox.server import Sandbox
from tests.contract.case_asana import task_key
from tests.sql_log import statements_sent
from tests.test_exactly_once import MEETING, asana_tasks, deliver, make_runtime, row_of
from tests.worker_run import run_message
from workers import pushing
from workers.actors import declare
from workers.batching import batches, largest
from workers.broker import make_broker
from workers.lanes import Route
from workers.runtime import Runtime

TASKS = "/api/1.0/tasks"


@pytest.fixture
def runtime(clean_sandbox: Sandbox, tmp_path: Path) -> Runtime:
    return make_runtime(clean_sandbox, f"sqlite:///{tmp_path}/ledger.db")


def asana_batch(runtime: Runtime) -> tuple[list[str], Route]:
    """The planned meeting's one Asana message: its op keys (at least two) and route."""
    _, planned = deliver(runtime, MEETING)
    (batch,) = [b for b in batches(runtime.settings, planned) if b.connector == "asana"]
    assert len(batch.keys) >= 2
    return batch.keys, batch.route


def tasks_of(sandbox: Sandbox, keys: list[str]) -> dict[str, int]:
    """How many Asana tasks carry each op's key."""
    held = [task_key(t) for t in asana_tasks(sandbox)]
    return {key: held.count(key) for key in keys}


def test_a_meetings_ops_for_one_connection_go_in_one_message_with_one_claim_and_one_record(
    runtime: Runtime, clean_sandbox: Sandbox
) -> None:
    # given a planned meeting, every statement the database is sent from now on
    keys, route = asana_batch(runtime)
    pipeline = declare(make_broker("stub"), runtime)
    with statements_sent(engine_for(runtime.settings.database_url)) as statements:
        # when a worker delivers the meeting's Asana message, then the same message again
        run_message(pipeline.push["asana"].live, keys, **route.options())
        first = list(statements)
        run_message(pipeline.push["asana"].live, keys, **route.options())

    # expect every op written once, claimed in one statement and recorded in one
    assert {row_of(runtime, k).state for k in keys} == {"done"}
    assert set(tasks_of(clean_sandbox, keys).values()) == {1}
    updates = [s for s in first if s.startswith("UPDATE ops")]
    assert len(updates) == 2, updates  # claim, record
    # and the second delivery answered from the ledger: nothing written, nothing claimed
    assert not [s for s in statements[len(first) :] if s.startswith("UPDATE ops")]
    assert len(asana_tasks(clean_sandbox)) == len(keys)


def test_an_op_the_provider_refuses_fails_alone_and_the_others_land(
    runtime: Runtime, clean_sandbox: Sandbox
) -> None:
    # given a batch whose first task Asana refuses (400)
    keys, _ = asana_batch(runtime)
    clean_sandbox.admin("asana").arm("error", status=400, method="POST", path=TASKS)

    # when it is pushed
    pushed = pushing.push_ops(runtime, keys)

    # expect that op failed with Asana's reason and every other one written
    assert pushed.states[keys[0]] == "failed" and row_of(runtime, keys[0]).last_error
    assert {pushed.states[k] for k in keys[1:]} == {"done"}
    assert {row_of(runtime, k).state for k in keys[1:]} == {"done"}
    assert pushed.later() is None and set(pushed.meetings) == set(keys)


def test_a_429_stops_the_batch_and_what_it_never_reached_goes_back_unclaimed(
    runtime: Runtime, clean_sandbox: Sandbox
) -> None:
    # given a batch whose first write meets a 429
    keys, _ = asana_batch(runtime)
    clean_sandbox.admin("asana").arm("throttle", method="POST", path=TASKS, retry_after=3)

    # when it is pushed
    pushed = pushing.push_ops(runtime, keys)

    # expect it to come back after Asana's wait, the first op in doubt, the rest untouched
    later = pushed.later()
    assert later is not None and later.reason == "throttled" and later.delay_ms >= 3000
    first = row_of(runtime, keys[0])
    assert (first.state, first.attempts, first.lease_until) == ("sending", 1, 0.0)
    rest = [row_of(runtime, k) for k in keys[1:]]
    assert {(r.state, r.attempts, r.lease_until) for r in rest} == {("planned", 0, None)}

    # and the message, back, writes each op once
    again = pushing.push_ops(runtime, keys)
    assert {again.states[k] for k in keys} == {"done"}
    assert set(tasks_of(clean_sandbox, keys).values()) == {1}


def test_a_transient_failure_retries_the_message_for_what_is_left_only(
    runtime: Runtime, clean_sandbox: Sandbox
) -> None:
    # given a batch whose first write meets a 503, delivered by a worker
    keys, route = asana_batch(runtime)
    pipeline = declare(make_broker("stub"), runtime)
    clean_sandbox.admin("asana").arm("error", status=503, method="POST", path=TASKS)

    # when the worker delivers it: the others land, the message is retried
    with pytest.raises(Transient):
        run_message(pipeline.push["asana"].live, keys, **route.options())
    assert {row_of(runtime, k).state for k in keys[1:]} == {"done"}
    assert row_of(runtime, keys[0]).state == "sending"  # in doubt, free for the retry

    # then the retry writes the one that failed, and nothing twice
    run_message(pipeline.push["asana"].live, keys, retries=1, **route.options())
    assert {row_of(runtime, k).state for k in keys} == {"done"}
    assert set(tasks_of(clean_sandbox, keys).values()) == {1}


class Interrupted(BaseException):
    """A worker shutting down mid-write."""


def test_a_batch_interrupted_mid_write_records_what_landed_and_leaves_the_write_in_doubt(
    runtime: Runtime, clean_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a batch whose first write lands and whose second is interrupted, on a
    # connector that writes one op a call
    keys, _ = asana_batch(runtime)
    built = runtime.connectors.get
    calls = {"apply": 0}

    class Stopping:
        apply_many = None  # one op a call

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def apply(self, op: Any, prior: Any) -> Any:
            calls["apply"] += 1
            if calls["apply"] == 2:
                raise Interrupted
            return self.inner.apply(op, prior)

    monkeypatch.setattr(
        runtime.connectors, "get", lambda s, n, *, org_id: Stopping(built(s, n, org_id=org_id))
    )

    # when it is pushed
    with pytest.raises(Interrupted):
        pushing.push_ops(runtime, keys)

    # expect the first recorded done, the second in doubt and free for the next push
    assert row_of(runtime, keys[0]).state == "done"
    second = row_of(runtime, keys[1])
    assert (second.state, second.attempts, second.lease_until) == ("sending", 1, 0.0)
    # which finds nothing landed, writes it once, and leaves the first alone
    assert {pushing.push_ops(runtime, keys).states[k] for k in keys} == {"done"}
    assert set(tasks_of(clean_sandbox, keys).values()) == {1}


def test_a_batch_request_interrupted_after_it_landed_leaves_all_its_ops_in_doubt(
    runtime: Runtime, clean_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a batch whose tasks Asana creates in one request, the worker stopping before
    # the answer is recorded
    keys, _ = asana_batch(runtime)
    built = runtime.connectors.get

    class Stopping:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def apply_many(self, writes: Any) -> Any:
            self.inner.apply_many(writes)
            raise Interrupted

    monkeypatch.setattr(
        runtime.connectors, "get", lambda s, n, *, org_id: Stopping(built(s, n, org_id=org_id))
    )

    # when it is pushed
    with pytest.raises(Interrupted):
        pushing.push_ops(runtime, keys)

    # expect every op of the request in doubt, free for the next push
    rows = [row_of(runtime, k) for k in keys]
    assert {(r.state, r.attempts, r.lease_until) for r in rows} == {("sending", 1, 0.0)}
    monkeypatch.undo()
    # which finds every task and writes none of them again
    assert {pushing.push_ops(runtime, keys).states[k] for k in keys} == {"done"}
    assert set(tasks_of(clean_sandbox, keys).values()) == {1}


def test_batches_never_ask_more_than_the_setting_or_the_buckets_burst(runtime: Runtime) -> None:
    # given a meeting's planned ops, and a limit of two ops a message
    _, planned = deliver(runtime, MEETING)
    settings = runtime.settings.model_copy(
        update={"throttle": runtime.settings.throttle.model_copy(update={"push_batch": 2})}
    )

    # when they are grouped
    made = batches(settings, planned)

    # expect every op in exactly one message, none over two ops, one route per message
    assert sorted(k for b in made for k in b.keys) == sorted(p.key for p in planned)
    assert max(len(b.keys) for b in made) <= 2
    by_key = {p.key: p.route.connection for p in planned}
    assert all(len({by_key[k] for k in b.keys}) == 1 for b in made)
    # and a Slack channel's flow (burst 1 here) takes one message at a time
    one = ThrottleSettings(flows={"slack": {"rate": 1.0, "burst": 1}})  # type: ignore[dict-item]
    slack = Route(org="acme", connector="slack", connection="acme-slack", channel="#sales")
    assert largest(runtime.settings.model_copy(update={"throttle": one}), slack) == 1
