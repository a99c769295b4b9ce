"""A Slack recap links the Asana tasks and Salesforce records made for the same meeting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connectors.asana import AsanaConnector
from connectors.base import ConnectionConfig, Connector, Op, Receipt
from connectors.salesforce import SalesforceConnector
from connectors.slack import SlackConnector
from extraction.schemas import ActionItem, CrmFields, Insights, TextFact
from mappings import load_mapping, plan_ops
from meetsync.db.models import OpRecord
from meetsync.models import MeetingOutput
from sandbox.client import SandboxClient
from sandbox.server import Sandbox
from tests.contract.case_asana import task_key
from tests.contract.case_salesforce import connection as salesforce_config
from tests.contract.case_slack import slack_config
from tests.test_end_to_end import MEETING as E2E_MEETING
from tests.test_exactly_once import (
    QUESTIONNAIRE,
    REWORDED,
    asana_tasks,
    deliver,
    edited,
    make_runtime,
)
from tests.worker_run import run_message
from workers import pushing
from workers.actors import declare
from workers.broker import make_broker
from workers.enrich import pending, waits_for, with_links
from workers.runtime import Runtime

ACME = Path(__file__).resolve().parents[1] / "mappings" / "examples" / "acme.yaml"
URL = "https://meetsync.example/v1/meetings/links-1"

MEETING = MeetingOutput.model_validate(
    {
        "org_id": "acme",
        "meeting_id": "links-1",
        "title": "Globex discovery call",
        "start": "2026-11-17T15:00:00Z",
        "end": "2026-11-17T15:40:00Z",
        "timezone": "America/New_York",
        "attendees": [
            {"name": "Dana Reyes", "email": "dana@acme.io", "internal": True},
            {"name": "Sam Patel", "email": "sam@acme.io", "internal": True},
            {"name": "Hank Scorpio", "email": "hank@globex.com", "internal": False},
        ],
        "transcript": [{"speaker": "Dana Reyes", "text": "I'll send the questionnaire."}],
        "summary": "Discovery with Globex.",
    }
)


def item(title: str, email: str) -> ActionItem:
    return ActionItem(
        title=title, description=None, owner=email.split("@")[0].title(), owner_email=email,
        due_date="2026-11-20", priority=None, confidence=0.9, evidence="I'll send it.",
    )  # fmt: skip


INSIGHTS = Insights(
    action_items=[
        item("Send the security questionnaire", "dana@acme.io"),
        item("Set up a sandbox workspace", "sam@acme.io"),
    ],
    crm=CrmFields(
        next_steps=TextFact(value="Technical deep dive", evidence="next step is a deep dive"),
        stage=None, amount=None, close_date=None, competitors=None, pain_points=None,
        decision_makers=None, budget=None, timeline=None, risks=None,
    ),
)  # fmt: skip


def planned() -> list[Op]:
    return plan_ops(MEETING, INSIGHTS, load_mapping(ACME), meeting_url=URL)


def recap_of(ops: list[Op]) -> Op:
    return next(op for op in ops if op.connector == "slack")


# -- the enrichment, pure ------------------------------------------------------------------
def test_links_fill_item_urls_and_records_without_changing_the_hash() -> None:
    # given the recap and receipts for everything it waits for
    ops = planned()
    recap = recap_of(ops)
    by_key = {op.key: op for op in ops}
    receipts = {
        key: Receipt(
            external_id=f"id-{n}",
            url=f"https://provider.example/{n}",
            object="task" if by_key[key].connector == "asana" else by_key[key].target["object"],
        )
        for n, key in enumerate(waits_for(recap))
    }

    # when the links are filled in
    linked = with_links(recap, receipts)

    # expect each item's line to point at its own task, the records listed, the hash the plan's
    tasks = {o.fields["name"]: o.key for o in ops if o.connector == "asana"}
    urls = {i["title"]: i["url"] for i in linked.fields["action_items"]}
    assert urls == {title: receipts[key].url for title, key in tasks.items()}
    assert [x["label"] for x in linked.fields["links"]] == [
        "Salesforce Task",
        "Salesforce Opportunity",
    ]
    assert linked.payload_hash == recap.payload_hash and linked.key == recap.key
    assert recap.fields["action_items"][0].get("url") is None  # the planned op is untouched


@pytest.mark.parametrize(
    ("states", "waiting"),
    [
        pytest.param({}, False, id="nothing-recorded"),
        pytest.param({"a": "done", "b": "failed", "c": "paused", "d": "dead"}, False, id="settled"),
        pytest.param({"a": "done", "b": "sending"}, True, id="one-in-flight"),
        pytest.param({"a": "planned"}, True, id="one-planned"),
    ],
)
def test_a_recap_waits_while_what_it_links_is_in_flight(
    states: dict[str, str], waiting: bool
) -> None:
    op = Op(
        key="r", org_id="o", meeting_id="m", connector="slack", connection="c",
        action="post_message",
        target={"after": [{"key": k, "destination": "d", "title": None} for k in "abcd"]},
    )  # fmt: skip
    assert bool(pending(op, states)) is waiting


def test_a_failed_dependency_is_simply_not_linked() -> None:
    recap = recap_of(planned())
    linked = with_links(recap, {})
    assert "links" not in linked.fields
    assert all(not i.get("url") for i in linked.fields["action_items"])


# -- through the real connectors ----------------------------------------------------------
def connectors(sandbox: Sandbox) -> dict[str, Connector]:
    asana = ConnectionConfig(
        name="acme-asana", provider="asana", base_url=sandbox.urls["asana"],
        credentials={"token": "sandbox-pat"},
    )  # fmt: skip
    return {
        "salesforce": SalesforceConnector(salesforce_config(sandbox)),
        "asana": AsanaConnector(asana),
        "slack": SlackConnector(slack_config(sandbox)),
    }


def test_the_posted_recap_links_the_tasks_and_records(clean_sandbox: Sandbox) -> None:
    # given the meeting's tasks, meeting log and opportunity update pushed first
    ops = planned()
    made = connectors(clean_sandbox)
    receipts = {op.key: made[op.connector].apply(op, None) for op in ops if op.connector != "slack"}

    # when the recap is pushed with their links
    recap = recap_of(ops)
    made["slack"].apply(with_links(recap, receipts), None)

    # expect the one message to carry every task's and record's URL
    messages: list[dict[str, Any]] = SandboxClient(clean_sandbox.origins["slack"]).state()[
        "messages"
    ]
    (posted,) = [m for m in messages if (m.get("metadata") or {}).get("event_type")]
    text = json.dumps(posted.get("blocks"))
    for receipt in receipts.values():
        assert receipt.url and receipt.url in text


# -- through the pipeline's stages: a re-worded item keeps its link -------------------------
@pytest.fixture
def runtime(clean_sandbox: Sandbox, tmp_path: Path) -> Runtime:
    return make_runtime(clean_sandbox, f"sqlite:///{tmp_path}/links.db")


def settle(runtime: Runtime, planned: list[pushing.Planned]) -> None:
    """Push every planned op; a recap waiting for its links is pushed once they are done."""
    waiting = [p for p in planned if pushing.push(runtime, p.key).state == "waiting"]
    assert [pushing.push(runtime, p.key).state for p in waiting] == ["done"] * len(waiting)


def recap_lines(sandbox: Sandbox) -> tuple[str, list[str]]:
    """The one recap's ts and each line of its section blocks' text."""
    messages = SandboxClient(sandbox.origins["slack"]).state()["messages"]
    (recap,) = [m for m in messages if (m.get("metadata") or {}).get("event_type")]
    sections = [b["text"]["text"] for b in recap.get("blocks") or [] if b["type"] == "section"]
    return str(recap["ts"]), [line for text in sections for line in text.splitlines()]


def test_a_reworded_item_keeps_its_link_in_the_updated_recap(
    runtime: Runtime, clean_sandbox: Sandbox
) -> None:
    # given the meeting pushed once: two Asana tasks and a recap linking them
    meeting_id, planned = deliver(runtime, E2E_MEETING)
    settle(runtime, planned)
    tasks = {task_key(t): t for t in asana_tasks(clean_sandbox)}
    (questionnaire,) = [t for t in tasks.values() if "questionnaire" in t["name"].lower()]
    ts, _ = recap_lines(clean_sandbox)

    # when an edit re-words the questionnaire promise and the re-run is pushed
    _, replanned = deliver(runtime, edited(E2E_MEETING, QUESTIONNAIRE, REWORDED))
    settle(runtime, replanned)

    # expect the same recap updated in place, its re-worded line linking the same task
    new_title = "Get the completed security questionnaire over to Hank"
    assert {t["gid"] for t in asana_tasks(clean_sandbox)} == {t["gid"] for t in tasks.values()}
    updated_ts, lines = recap_lines(clean_sandbox)
    (line,) = [text for text in lines if new_title in text]
    assert updated_ts == ts
    assert questionnaire["permalink_url"] in line
    with runtime.session() as session:
        recap = session.scalars(
            select(OpRecord).where(OpRecord.meeting_id == meeting_id, OpRecord.connector == "slack")
        ).one()
    assert task_key(questionnaire) in {entry["key"] for entry in recap.target["after"]}
    assert recap.state == "done" and recap.applied_hash == recap.payload_hash


def test_a_recap_waiting_for_its_links_spends_no_slack_turn_and_is_woken_when_they_settle(
    runtime: Runtime, clean_sandbox: Sandbox
) -> None:
    # given a meeting whose recap links tasks and records not written yet
    _, planned = deliver(runtime, MEETING)
    recaps = [p for p in planned if p.connector == "slack"]
    others = [p for p in planned if p.connector != "slack"]
    assert recaps and others
    pipeline = declare(make_broker("stub"), runtime)

    # when a worker runs the recap's push first
    for p in recaps:
        run_message(pipeline.push["slack"].live, p.key, **p.route.options())

    # expect no Slack call, no token of the channel's, and no poll queued
    queues = pipeline.broker.queues  # type: ignore[attr-defined]
    assert sum(queues[q].qsize() for q in queues if q.startswith("push.slack")) == 0
    assert SandboxClient(clean_sandbox.origins["slack"]).state()["messages"] == []
    slack = [b for b in pipeline.throttling.throttle.status() if b.bucket.startswith("slack")]
    assert sum(b.counts.get("granted", 0) for b in slack) == 0

    # when every record it links is written
    for p in others:
        run_message(pipeline.push[p.connector].live, p.key, **p.route.options())

    # expect the recap enqueued once, by the push that settled the last of them
    assert queues["push.slack"].qsize() == len(recaps)
