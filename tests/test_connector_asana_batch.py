"""The Asana connector's `apply_many`: new tasks through the Batch API, each op its own outcome."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.asana import BATCH_WRITES, AsanaConnector
from connectors.base import ConnectionConfig, Op, Receipt
from connectors.errors import Permanent, RateLimited, Transient
from sandbox.client import SandboxClient
from sandbox.server import Sandbox

TARGET = {"workspace": None, "project": "Customer Follow-ups", "section": "Inbox"}
BATCH = "/api/1.0/batch"
TASKS = "/api/1.0/tasks"


@pytest.fixture(scope="module")
def running() -> Iterator[Sandbox]:
    with Sandbox(only=["asana"]) as sandbox:
        yield sandbox


@pytest.fixture
def admin(running: Sandbox) -> Iterator[SandboxClient]:
    running.reset()
    client = SandboxClient(running.origins["asana"])
    yield client
    client.clear_faults()


@pytest.fixture
def connector(running: Sandbox, admin: SandboxClient) -> AsanaConnector:
    """On a personal access token: tasks keyed by the marker line in their notes."""
    return AsanaConnector(
        ConnectionConfig(
            name="asana-main",
            provider="asana",
            base_url=running.urls["asana"],
            credentials={"token": "sandbox-pat"},
        )
    )


def _ops(count: int, **fields: Any) -> list[Op]:
    return [
        Op.plan(
            org_id="org-1",
            meeting_id="meeting-1",
            connector="asana",
            connection="asana-main",
            action="upsert_task",
            item_key=f"item-{n}",
            target=TARGET,
            fields={"name": f"Follow-up {n}", "notes": "From the call.", **fields},
        )
        for n in range(count)
    ]


def _requests(admin: SandboxClient, endpoint: str) -> int:
    return int(admin.stats()["requests"].get(endpoint, 0))


def test_new_tasks_go_in_one_request_and_each_is_found_by_its_key(
    connector: AsanaConnector, admin: SandboxClient
) -> None:
    ops = _ops(4, assignee_email="lee@acme.io", followers_emails=["priya@acme.io"])
    outcomes = connector.apply_many([(op, None) for op in ops])
    assert all(isinstance(o, Receipt) for o in outcomes)
    assert _requests(admin, f"POST {BATCH}") == 1 and not _requests(admin, f"POST {TASKS}")
    state = admin.state()
    tasks = {t["gid"]: t for t in state["tasks"]}
    lee = next(u["gid"] for u in state["users"] if u["email"] == "lee@acme.io")
    for op, receipt in zip(ops, outcomes, strict=True):
        assert isinstance(receipt, Receipt)
        task = tasks[receipt.external_id]
        assert task["name"] == op.fields["name"] and task["assignee"]["gid"] == lee
        assert receipt.extra["payload_hash"] == op.payload_hash
        # found again by the marker, as a lost answer would need
        assert connector.find(op) == Receipt(
            external_id=receipt.external_id,
            url=receipt.url,
            object="task",
            extra={"payload_hash": op.payload_hash, "warnings": []},
        )


def test_requests_carry_no_more_than_asanas_concurrent_writes_allow(
    connector: AsanaConnector, admin: SandboxClient
) -> None:
    # a push holds a throttle slot per task it sends at once (workers.throttle)
    assert AsanaConnector.writes_at_once == BATCH_WRITES
    assert AsanaConnector.default_limits.concurrency == 15  # Asana's concurrent writes
    outcomes = connector.apply_many([(op, None) for op in _ops(2 * BATCH_WRITES + 1)])
    assert all(isinstance(o, Receipt) for o in outcomes)
    assert _requests(admin, f"POST {BATCH}") == 3
    assert len(admin.state()["tasks"]) == 2 * BATCH_WRITES + 1


def test_an_action_asana_refuses_fails_alone(
    connector: AsanaConnector, admin: SandboxClient
) -> None:
    admin.arm("error", status=400, method="POST", path=TASKS, message="name: too long")
    outcomes = connector.apply_many([(op, None) for op in _ops(3)])
    assert isinstance(outcomes[0], Permanent) and "too long" in outcomes[0].message
    assert all(isinstance(o, Receipt) for o in outcomes[1:])
    assert len(admin.state()["tasks"]) == 2


def test_rich_text_asana_refuses_is_sent_again_as_plain_notes_for_that_task(
    connector: AsanaConnector, admin: SandboxClient
) -> None:
    plain, rich = _ops(2)
    rich = rich.model_copy(
        update={"fields": {**rich.fields, "html_notes": "<body><blink>x</blink></body>"}}
    )
    outcomes = connector.apply_many([(plain, None), (rich, None)])
    assert all(isinstance(o, Receipt) for o in outcomes)
    receipt = outcomes[1]
    assert isinstance(receipt, Receipt) and "html_notes" in receipt.extra["warnings"][0]
    assert len(admin.state()["tasks"]) == 2


def test_a_429_refuses_the_whole_request_and_nothing_is_created(
    connector: AsanaConnector, admin: SandboxClient
) -> None:
    admin.arm("throttle", method="POST", path=TASKS, retry_after=7)
    outcomes = connector.apply_many([(op, None) for op in _ops(3)])
    first = outcomes[0]
    assert isinstance(first, RateLimited) and first.retry_after == 7
    assert outcomes[1:] == [None, None]  # never sent
    assert admin.state()["tasks"] == []


def test_asana_away_mid_request_leaves_every_op_of_it_in_doubt(
    connector: AsanaConnector, admin: SandboxClient
) -> None:
    admin.arm("error", status=503, method="POST", path=BATCH)
    outcomes = connector.apply_many([(op, None) for op in _ops(3)])
    assert all(isinstance(o, Transient) for o in outcomes)


def test_an_update_among_them_is_written_on_its_own(
    connector: AsanaConnector, admin: SandboxClient
) -> None:
    first, second, third = _ops(3)
    prior = connector.apply(first, None)
    changed = first.model_copy(
        update={"fields": {**first.fields, "name": "Renamed"}, "payload_hash": "changed"}
    )
    outcomes = connector.apply_many([(changed, prior), (second, None), (third, None)])
    assert all(isinstance(o, Receipt) for o in outcomes)
    assert outcomes[0] is not None and outcomes[0].external_id == prior.external_id
    names = sorted(t["name"] for t in admin.state()["tasks"])
    assert names == ["Follow-up 1", "Follow-up 2", "Renamed"]
