"""sales_events.yaml: the meeting logged as a Salesforce Event, timed, owned and linked."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from connectors.base import Op
from connectors.salesforce import SalesforceConnector
from mappings import load_mapping, plan_ops
from mappings.validate import validate_against
from sandbox.client import SandboxClient
from sandbox.server import Sandbox
from tests.contract.case_salesforce import connection
from tests.test_recap_links import INSIGHTS, MEETING, URL

EVENTS = Path(__file__).resolve().parents[1] / "mappings" / "examples" / "sales_events.yaml"


def _records(sandbox: Sandbox) -> dict[str, list[dict[str, Any]]]:
    state = SandboxClient(sandbox.origins["salesforce"], sandbox.ca_file).state()
    records: dict[str, list[dict[str, Any]]] = state["records"]
    return records


def _event_op(meeting: Any = MEETING) -> Op:
    (op,) = plan_ops(meeting, INSIGHTS, load_mapping(EVENTS), meeting_url=URL)
    return op


def test_the_meeting_becomes_an_event_with_its_times_people_and_opportunity(
    clean_sandbox: Sandbox,
) -> None:
    # given the Globex call (15:00-15:40 UTC, host Dana, Hank from Globex) planned
    op = _event_op()
    assert op.target["object"] == "Event"

    # when it is pushed through the connector
    receipt = SalesforceConnector(connection(clean_sandbox)).apply(op, None)

    # expect one Event, no Task, timed as the meeting was and linked to Hank and Globex's deal
    records = _records(clean_sandbox)
    assert records["Task"] == []
    (event,) = records["Event"]
    assert event["Id"] == receipt.external_id and receipt.object == "Event"
    assert event["Subject"] == "Meeting: Globex discovery call"
    assert event["StartDateTime"] == "2026-11-17T15:00:00.000+0000"
    assert event["EndDateTime"] == "2026-11-17T15:40:00.000+0000"
    assert event["DurationInMinutes"] == 40 and event["ActivityDate"] == "2026-11-17"
    assert event["Type"] == "Meeting" and event["Location"] == URL
    users = {u["Id"]: u["Email"] for u in records["User"]}
    contacts = {c["Id"]: c["Email"] for c in records["Contact"]}
    (globex,) = [o for o in records["Opportunity"] if o["Name"].startswith("Globex")]
    assert users[event["OwnerId"]] == "dana@acme.io"
    assert contacts[event["WhoId"]] == "hank@globex.com"
    assert event["WhatId"] == globex["Id"]
    assert "- Send the security questionnaire (Dana, due 2026-11-20)" in event["Description"]


def test_a_meeting_that_ran_over_moves_the_same_event(clean_sandbox: Sandbox) -> None:
    # given the Event logged for the call
    connector = SalesforceConnector(connection(clean_sandbox))
    first = connector.apply(_event_op(), None)

    # when the meeting is re-run with the call having ended twenty minutes later
    longer = MEETING.model_copy(update={"end": datetime.fromisoformat("2026-11-17T16:00:00Z")})
    again = _event_op(longer)
    second = connector.apply(again, first)

    # expect the same Event, now an hour long, and still only one
    (event,) = _records(clean_sandbox)["Event"]
    assert second.external_id == first.external_id == event["Id"]
    assert event["EndDateTime"] == "2026-11-17T16:00:00.000+0000"
    assert event["DurationInMinutes"] == 60


def test_the_example_fits_the_sandbox_orgs_event_fields(sandbox: Sandbox) -> None:
    # given the real connector's describe of the sandbox org
    connector = SalesforceConnector(connection(sandbox))

    # when sales_events.yaml is validated against it
    problems = validate_against(load_mapping(EVENTS), lambda _, target: connector.describe(target))

    # expect no problem: Event and every field the example writes exist and fit
    assert problems == []
