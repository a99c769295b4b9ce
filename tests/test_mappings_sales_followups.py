"""sales.yaml: a Salesforce follow-up Task per action item, owned, dated and linked."""

from __future__ import annotations

from pathlib import Path

from connectors.salesforce import SalesforceConnector
from mappings import load_mapping, plan_ops
from sandbox.client import SandboxClient
from sandbox.server import Sandbox
from tests.contract.case_salesforce import connection
from tests.test_recap_links import INSIGHTS, MEETING, URL

SALES = Path(__file__).resolve().parents[1] / "mappings" / "examples" / "sales.yaml"


def test_each_action_item_becomes_a_task_for_its_owner_on_the_opportunity(
    clean_sandbox: Sandbox,
) -> None:
    # given the Globex call planned through sales.yaml
    ops = plan_ops(MEETING, INSIGHTS, load_mapping(SALES), meeting_url=URL)
    followups = [op for op in ops if op.connector == "salesforce" and "Status" in op.fields]
    followups = [op for op in followups if op.fields["Status"] == "Not Started"]
    assert [op.fields["Subject"] for op in followups] == [i.title for i in INSIGHTS.action_items]

    # when they are pushed
    connector = SalesforceConnector(connection(clean_sandbox))
    receipts = [connector.apply(op, None) for op in followups]

    # expect each Task owned by its item's owner, due on its date, on Globex's opportunity
    records = SandboxClient(clean_sandbox.origins["salesforce"], clean_sandbox.ca_file).state()[
        "records"
    ]
    users = {u["Id"]: u["Email"] for u in records["User"]}
    (globex,) = [o for o in records["Opportunity"] if o["Name"].startswith("Globex")]
    tasks = {t["Id"]: t for t in records["Task"]}
    for receipt, item in zip(receipts, INSIGHTS.action_items, strict=True):
        task = tasks[receipt.external_id]
        assert users[task["OwnerId"]] == item.owner_email
        assert task["ActivityDate"] == item.due_date
        assert task["WhatId"] == globex["Id"]
        assert task["Status"] == "Not Started" and task["Priority"] == "Normal"


def test_a_rerun_never_reopens_a_task_the_seller_completed(clean_sandbox: Sandbox) -> None:
    # given a follow-up Task pushed, which the seller then completed
    connector = SalesforceConnector(connection(clean_sandbox))
    mapping = load_mapping(SALES)
    first_op = next(
        op
        for op in plan_ops(MEETING, INSIGHTS, mapping, meeting_url=URL)
        if op.fields.get("Status") == "Not Started"
    )
    first = connector.apply(first_op, None)
    connector.session.rest("PATCH", f"sobjects/Task/{first.external_id}", {"Status": "Completed"})

    # when a re-extraction moves the item's due date and the meeting is re-run
    moved = INSIGHTS.model_copy(deep=True)
    moved.action_items[0].due_date = "2026-11-27"
    again = next(
        op for op in plan_ops(MEETING, moved, mapping, meeting_url=URL) if op.key == first_op.key
    )
    second = connector.apply(again, first)

    # expect the new due date written and the Task still completed
    task = connector.session.rest("GET", f"sobjects/Task/{first.external_id}")
    assert task["ActivityDate"] == "2026-11-27" and task["Status"] == "Completed"
    assert set(second.extra["skipped"]) == {"Status"}
