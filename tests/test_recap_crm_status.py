"""A recap says which CRM changes were written, and marks what was refused or only proposed."""

from __future__ import annotations

import json

import pytest

from connectors.base import Receipt
from connectors.slack_blocks import render_recap
from tests.test_recap_links import planned, recap_of
from workers.enrich import waits_for, with_links


def _heading_and_lines(states: dict[str, str] | None) -> tuple[dict[str, object], str]:
    ops = planned()
    recap = recap_of(ops)
    by_key = {op.key: op for op in ops}
    records = [k for k in waits_for(recap) if by_key[k].connector == "salesforce"]
    tasks = [k for k in waits_for(recap) if by_key[k].connector == "asana"]
    named = {k: by_key[k].target.get("object", "task") for k in records + tasks}
    chosen = {k: "done" for k in tasks} | {
        k: (states or {}).get(str(named[k]), "done") for k in records
    }
    receipts = {k: Receipt(external_id=k, url=f"https://x.example/{k}") for k, s in chosen.items()
                if s == "done"}  # fmt: skip
    linked = with_links(recap, receipts, chosen if states is not None else None)
    (message,) = render_recap(linked.fields, lambda name, email: None)
    return dict(linked.fields["crm_status"]), json.dumps(message.blocks)


@pytest.mark.parametrize(
    ("states", "expected", "heading"),
    [
        pytest.param({}, {"state": "written"}, "*CRM updates* (written)", id="all-done"),
        pytest.param(
            {"Opportunity": "failed"},
            {"state": "partial", "failed": ["opportunity-update"]},
            "*CRM updates: only partly written* (opportunity-update failed)",
            id="opportunity-refused",
        ),
        pytest.param(
            {"Opportunity": "dead", "Task": "failed"},
            {"state": "failed", "failed": ["meeting-log", "opportunity-update"]},
            "*CRM updates: NOT written* (meeting-log, opportunity-update failed)",
            id="all-refused",
        ),
        pytest.param(
            {"Opportunity": "paused"},
            {"state": "proposed"},
            "*Proposed CRM updates* (not written)",
            id="awaiting-review",
        ),
    ],
)
def test_the_crm_section_reports_what_the_crm_accepted(
    states: dict[str, str], expected: dict[str, object], heading: str
) -> None:
    # given the recap's Salesforce records settled in these states, when it is rendered
    status, blocks = _heading_and_lines(states)
    # expect its CRM section to say whether the changes were written
    assert status == expected
    assert heading in blocks
    assert "Technical deep dive" in blocks


def test_a_recap_without_a_status_never_claims_a_write() -> None:
    fields = {"title": "t", "crm_changes": [{"field": "Amount", "value": "$1"}]}
    (message,) = render_recap(fields, lambda name, email: None)
    text = json.dumps(message.blocks)
    assert "*Proposed CRM updates* (not written)" in text and "(written)" not in text


def test_an_item_whose_task_was_refused_is_flagged_not_linked() -> None:
    # given the recap's two tasks: one created, one refused by Asana
    ops = planned()
    recap = recap_of(ops)
    by_key = {op.key: op for op in ops}
    tasks = [k for k in waits_for(recap) if by_key[k].connector == "asana"]
    states = {k: "done" for k in waits_for(recap)} | {tasks[1]: "failed"}
    receipts = {k: Receipt(external_id=k, url=f"https://x.example/{k}") for k in tasks[:1]}
    # when the recap is linked and rendered
    linked = with_links(recap, receipts, states)
    (message,) = render_recap(linked.fields, lambda name, email: None)
    # expect the created task linked and the refused one marked as not created
    lines = {i["title"]: (i.get("url"), i.get("status")) for i in linked.fields["action_items"]}
    refused = by_key[tasks[1]].fields["name"]
    assert lines[refused] == (None, "failed")
    assert lines[by_key[tasks[0]].fields["name"]] == (receipts[tasks[0]].url, None)
    assert f"{refused} — Sam · due 2026-11-20 · _task NOT created_" in json.dumps(
        message.blocks, ensure_ascii=False
    )
