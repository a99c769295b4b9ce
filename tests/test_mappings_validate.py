"""validate_against: a mapping checked against destination metadata and org connections."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.asana import AsanaConnector
from connectors.base import ConnectionConfig, FieldSchema, TargetSchema
from connectors.errors import InvalidMapping
from connectors.slack import SlackConnector
from mappings import Mapping, MappingError, load_mapping
from mappings.validate import Describe, check_connection_orgs, static_target, validate_against
from sandbox.server import Sandbox
from sandbox.slack import TOKEN

EXAMPLES = Path(__file__).resolve().parents[1] / "mappings" / "examples"
ACME_CONNECTIONS = {"acme-salesforce": "acme", "acme-asana": "acme", "acme-slack": "acme"}

STAGES = [
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Value Proposition",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
]
SALESFORCE = {
    "Task": [
        FieldSchema(name="Subject", length=255),
        FieldSchema(name="Description", type="textarea", length=32000),
        FieldSchema(name="ActivityDate", type="date"),
        FieldSchema(
            name="Status",
            type="picklist",
            picklist=["Not Started", "In Progress", "Completed"],
            required=True,
        ),
        FieldSchema(name="Priority", type="picklist", picklist=["High", "Normal", "Low"]),
        FieldSchema(name="IsClosed", type="boolean", writable=False),
    ],
    "Event": [
        FieldSchema(name="Subject", length=255),
        FieldSchema(name="Description", type="textarea", length=32000),
        FieldSchema(name="StartDateTime", type="datetime"),
        FieldSchema(name="EndDateTime", type="datetime"),
        FieldSchema(name="DurationInMinutes", type="int"),
        FieldSchema(name="Location", length=255),
        FieldSchema(name="Type", type="picklist", picklist=["Call", "Email", "Meeting", "Other"]),
    ],
    "Opportunity": [
        FieldSchema(name="Name", required=True, length=120),
        FieldSchema(name="NextStep", length=255),
        FieldSchema(name="StageName", type="picklist", picklist=STAGES, required=True),
        FieldSchema(name="Amount", type="currency"),
        FieldSchema(name="CloseDate", type="date", required=True),
        FieldSchema(name="IsWon", type="boolean", writable=False),
    ],
}


def salesforce_describe(target: dict[str, Any]) -> TargetSchema:
    """Salesforce's describe as the connector reports it, for a seeded org."""
    fields = SALESFORCE.get(str(target.get("object")))
    if fields is None:
        raise InvalidMapping(f"sObject type '{target.get('object')}' is not supported")
    return TargetSchema(target=target, fields=fields)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(only=["asana", "slack"]) as running:
        yield running


@pytest.fixture(scope="module")
def describe(sandbox: Sandbox) -> Describe:
    """Real Asana and Slack connectors on the sandbox; Salesforce from its metadata above."""
    asana = AsanaConnector(
        ConnectionConfig(
            name="acme-asana",
            provider="asana",
            base_url=sandbox.urls["asana"],
            credentials={"token": "sandbox-pat"},
        )
    )
    slack = SlackConnector(
        ConnectionConfig(
            name="acme-slack",
            provider="slack",
            base_url=sandbox.urls["slack"],
            credentials={"bot_token": TOKEN},
        )
    )

    connectors: dict[str, AsanaConnector | SlackConnector] = {"asana": asana, "slack": slack}

    def describe(connector: str, target: dict[str, Any]) -> TargetSchema:
        if connector == "salesforce":
            return salesforce_describe(target)
        return connectors[connector].describe(target)

    return describe


@pytest.mark.parametrize("name", ["acme.yaml", "sales.yaml", "sales_events.yaml", "product.yaml"])
def test_examples_fit_the_seeded_world(name: str, describe: Describe) -> None:
    # given each bundled example and the seeded world's projects, channels and fields
    mapping = load_mapping(EXAMPLES / name)

    # expect no problem at all
    assert validate_against(mapping, describe, connection_orgs=ACME_CONNECTIONS) == []


def acme_with(old: str, new: str) -> Mapping:
    text = (EXAMPLES / "acme.yaml").read_text()
    assert old in text
    return load_mapping(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("old", "new", "path", "message", "fix"),
    [
        pytest.param(
            "section: Inbox",
            "section: Inbx",
            "destinations[0].target",
            "asana has no such place",
            "project and section",
            id="unknown-section",
        ),
        pytest.param(
            "project: Sprint 42",
            "project: Sprint 43",
            "destinations[4].target",
            "asana has no such place",
            "project and section",
            id="unknown-project",
        ),
        pytest.param(
            'channel: "#sales-meetings"',
            'channel: "#sales-meeting"',
            "destinations[3].target",
            "slack has no such place",
            "channel",
            id="unknown-channel",
        ),
        pytest.param(
            "      Priority: Normal",
            "      Priorty: Normal",
            "destinations[1].fields.Priorty",
            "Task has no field 'Priorty'",
            "did you mean 'Priority'?",
            id="unknown-field",
        ),
        pytest.param(
            "      Priority: Normal",
            "      IsClosed: true",
            "destinations[1].fields.IsClosed",
            "field 'IsClosed' is read-only",
            "remove",
            id="read-only-field",
        ),
        pytest.param(
            "      Priority: Normal",
            "      Priority: Urgent",
            "destinations[1].fields.Priority",
            "'Urgent' is not a value of picklist 'Priority'",
            "use one of: High, Low, Normal",
            id="constant-not-in-picklist",
        ),
        pytest.param(
            "negotiation: Negotiation/Review",
            "negotiation: Negotiation",
            "destinations[2].fields.StageName.transform[0].map.negotiation",
            "'negotiation' maps to 'Negotiation', which picklist 'StageName' does not have",
            "did you mean 'Negotiation/Review'?",
            id="picklist-map-to-missing-value",
        ),
        pytest.param(
            "        transform: [{currency: {expect: USD}}, {number: {round: 2}}]",
            "        transform: [{format_money: {currency: USD}}]",
            "destinations[2].fields.Amount",
            "field 'Amount' is a currency but the value is a str",
            "`number`",
            id="text-into-currency",
        ),
        pytest.param(
            "      ActivityDate: {from: meeting.start, transform: [date]}",
            "      ActivityDate: {from: meeting.duration_minutes}",
            "destinations[1].fields.ActivityDate",
            "field 'ActivityDate' is a date but the value is a number",
            "`date` transform",
            id="number-into-date",
        ),
        pytest.param(
            "      Status: Completed\n",
            "",
            "destinations[1].fields",
            "required field 'Status' is not assigned",
            "add Status",
            id="required-missing",
        ),
        pytest.param(
            "NextStep: {from: crm.next_steps.value, transform: [{truncate: {max: 255,",
            "NextStep: {from: crm.next_steps.value, transform: [{truncate: {max: 300,",
            "destinations[2].fields.NextStep.transform[0]",
            "truncates to 300 but 'NextStep' holds at most 255",
            "max: 255",
            id="truncate-longer-than-field",
        ),
        pytest.param(
            "      object: Task",
            "      object: Tsk",
            "destinations[1]",
            "salesforce cannot describe this target: sObject type 'Tsk' is not supported",
            None,
            id="describe-refuses",
        ),
    ],
)
def test_each_misfit_is_a_located_error(
    describe: Describe, old: str, new: str, path: str, message: str, fix: str | None
) -> None:
    # given the acme example with one thing the destinations do not have
    mapping = acme_with(old, new)

    # when it is validated against the destinations' metadata
    problems = validate_against(mapping, describe, connection_orgs=ACME_CONNECTIONS)

    # expect exactly that problem, located in the file
    assert [p.path for p in problems] == [path], [str(p) for p in problems]
    (problem,) = problems
    assert message in problem.message
    assert problem.line is not None and problem.file is None
    if fix is not None:
        assert problem.fix is not None and fix in problem.fix


def test_update_needs_no_required_on_create_fields(describe: Describe) -> None:
    # given the Opportunity update assigns neither Name nor, here, StageName
    mapping = acme_with(
        "      StageName:\n        from: crm.stage.value",
        "      NextStepX:\n        from: crm.stage.value",
    )

    # expect only the unknown field, not Name/StageName/CloseDate as "required"
    problems = validate_against(mapping, describe)
    assert [p.message for p in problems] == ["Opportunity has no field 'NextStepX'"]


@pytest.mark.parametrize(
    ("orgs", "message", "fix"),
    [
        pytest.param(
            ACME_CONNECTIONS | {"acme-slack": "globex"},
            "no connection named 'acme-slack' in this org",
            "did you mean",
            id="another-orgs-connection",
        ),
        pytest.param(
            {k: v for k, v in ACME_CONNECTIONS.items() if k != "acme-slack"}
            | {"acme-slak": "acme"},
            "no connection named 'acme-slack'",
            "did you mean 'acme-slak'?",
            id="unknown-connection",
        ),
    ],
)
def test_connections_must_be_the_orgs_own(orgs: dict[str, str], message: str, fix: str) -> None:
    # given the acme mapping and a registry of connections by org
    mapping = load_mapping(EXAMPLES / "acme.yaml")

    # when its connections are checked
    problems = check_connection_orgs(mapping, orgs)

    # expect the slack connection refused, at its line
    assert [p.path for p in problems] == ["connections.slack"]
    assert message in problems[0].message and fix in (problems[0].fix or "")
    # and nothing said about who else has a connection of that name
    assert "globex" not in f"{problems[0].message} {problems[0].fix}"


def test_validate_reports_the_file(tmp_path: Path, describe: Describe) -> None:
    # given a mapping file whose Slack connection is another org's
    path = tmp_path / "acme.yaml"
    path.write_text((EXAMPLES / "acme.yaml").read_text())
    mapping = load_mapping(path)

    # expect the error to name the file and the line of `slack:` under connections
    (problem,) = validate_against(
        mapping, describe, connection_orgs=ACME_CONNECTIONS | {"acme-slack": "globex"}
    )
    assert str(problem).startswith(f"{path}:9 connections.slack: no connection named 'acme-slack'")
    assert isinstance(problem, MappingError)


def test_static_target_keeps_only_constants() -> None:
    # given a Salesforce Task target mixing constants, paths and templates
    mapping = load_mapping(EXAMPLES / "acme.yaml")

    # expect what describe can know before a meeting: constants, nested ones included
    assert static_target(mapping.destinations[1].target) == {
        "object": "Task",
        "what": {"object": "Opportunity", "rule": "nearest_close_date", "required": False},
    }
