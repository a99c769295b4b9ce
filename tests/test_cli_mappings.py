"""`meetsync mappings`: schema, validation against the sandbox providers, versions, rollback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mappings import load_mapping
from sandbox.server import Sandbox
from tests.admin_cli import Cli, add_sandbox_connections, make_cli

ACME = (Path(__file__).resolve().parents[1] / "mappings" / "examples" / "acme.yaml").read_text()


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox) -> Cli:
    cli = make_cli(tmp_path, monkeypatch)
    cli.ok("orgs", "create", "acme")
    add_sandbox_connections(cli, sandbox)
    return cli


def write(tmp_path: Path, text: str, name: str = "acme.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def acme_with(old: str, new: str) -> str:
    assert old in ACME, old
    return ACME.replace(old, new, 1)


def line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


def test_the_schema_is_json_schema_for_mapping_files(cli: Cli) -> None:
    schema = json.loads(cli.ok("mappings", "schema"))
    assert schema["$schema"].endswith("2020-12/schema")
    assert {"org", "connections", "destinations"} <= set(schema["properties"])


def test_the_example_fits_every_sandbox_provider(cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path, ACME)
    assert (
        cli.ok("mappings", "validate", str(path), "--against", "all")
        .strip()
        .endswith("ok against all")
    )


# (old text, new text, line to blame (a fragment of the new text), YAML path, message, fix)
CASES = [
    pytest.param(
        "      Priority: Normal", "      Priorty: Normal",
        "destinations[1].fields.Priorty", "Task has no field 'Priorty'", "did you mean 'Priority'?",
        id="salesforce-unknown-field",
    ),
    pytest.param(
        "      Priority: Normal", "      IsClosed: true",
        "destinations[1].fields.IsClosed", "field 'IsClosed' is read-only", "remove this field",
        id="salesforce-read-only-field",
    ),
    pytest.param(
        "      ActivityDate: {from: meeting.start, transform: [date]}",
        "      ActivityDate: {from: meeting.duration_minutes}",
        "destinations[1].fields.ActivityDate", "'ActivityDate' is a date but the value is a number",
        "add the `date` transform", id="salesforce-incompatible-type",
    ),
    pytest.param(
        "      Priority: Normal", "      Priority: Urgent",
        "destinations[1].fields.Priority", "'Urgent' is not a value of picklist 'Priority'",
        "Normal", id="salesforce-picklist-value",
    ),
    pytest.param(
        "              negotiation: Negotiation/Review", "              negotiation: Negotiation",
        "destinations[2].fields.StageName.transform[0].map.negotiation",
        "maps to 'Negotiation', which picklist 'StageName' does not have",
        "did you mean 'Negotiation/Review'?", id="salesforce-mapped-picklist-value",
    ),
    pytest.param(
        "    action: update\n", "    action: upsert\n",
        "destinations[2].fields", "required field 'Name' is not assigned", "add Name: <value>",
        id="salesforce-required-field",
    ),
    pytest.param(
        "      project: Sprint 42", "      project: Sprint 43",
        "destinations[4].target", "asana has no such place", "project and section",
        id="asana-unknown-project",
    ),
    pytest.param(
        "      section: Inbox", "      section: Inbx",
        "destinations[0].target", "asana has no such place", "project and section",
        id="asana-unknown-section",
    ),
    pytest.param(
        "      due_on: {from: item.due_date, transform: [date]}\n      followers_emails",
        "      due_on: {from: item.due_date, transform: [date]}\n"
        "      custom_fields: {Severity: High}\n      followers_emails",
        "destinations[0].fields.custom_fields.Severity", "has no field 'custom_fields.Severity'",
        None, id="asana-unknown-custom-field",
    ),
    pytest.param(
        "      due_on: {from: item.due_date, transform: [date]}\n      followers_emails",
        "      due_on: {from: item.due_date, transform: [date]}\n"
        "      custom_fields: {Priority: Urgent}\n      followers_emails",
        "destinations[0].fields.custom_fields.Priority",
        "'Urgent' is not a value of picklist 'custom_fields.Priority'", "High",
        id="asana-enum-option",
    ),
    pytest.param(
        'channel: "#sales-meetings"', 'channel: "#sales-meeting"',
        "destinations[3].target", "slack has no such place", "channel", id="slack-unknown-channel",
    ),
    pytest.param(
        'channel: "#sales-meetings"', 'channel: "#general"',
        "destinations[3].target", "slack: the bot is not in #general", "invite it with /invite",
        id="slack-bot-not-in-channel",
    ),
    pytest.param(
        'channel: "#sales-meetings"', 'channel: "#old-deals"',
        "destinations[3].target", "slack: #old-deals is archived", "posts will fail",
        id="slack-archived-channel",
    ),
    pytest.param(
        "  slack: acme-slack", "  slack: globex-slack",
        "connections.slack", "no connection named 'globex-slack' in this org",
        "did you mean 'acme-slack'?", id="another-orgs-connection",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "path", "message", "fix"), CASES)
def test_validation_against_the_providers_catches_each_bad_case(
    cli: Cli,
    sandbox: Sandbox,
    tmp_path: Path,
    old: str,
    new: str,
    path: str,
    message: str,
    fix: str | None,
) -> None:
    # given the acme example with one thing the sandbox providers do not have
    cli.ok("orgs", "create", "globex")
    add_sandbox_connections(cli, sandbox, org="globex")
    text = acme_with(old, new)
    file = write(tmp_path, text)

    # when it is validated against every provider it names
    result = cli.fails("mappings", "validate", str(file), "--against", "all")

    # expect exactly that problem: the file, the line, the YAML path, the message and the fix
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == "1 problem", result.stderr
    line = load_mapping(text).line_of(path)
    assert line is not None and path.split(".")[-1].split("[")[0] in text.splitlines()[line - 1]
    assert lines[0].startswith(f"{file}:{line} {path}: ") and message in lines[0], lines[0]
    if fix is not None:
        assert "(fix: " in lines[0] and fix in lines[0]


def test_validation_without_against_reads_the_file_alone(cli: Cli, tmp_path: Path) -> None:
    # given a channel the sandbox does not have: only a live check can know
    file = write(tmp_path, acme_with('"#sales-meetings"', '"#nowhere"'))

    # expect the file itself valid, and the live check failing
    assert cli.ok("mappings", "validate", str(file)).strip() == f"{file}: ok"
    cli.fails("mappings", "validate", str(file), "--against", "acme-slack")


def test_against_a_connection_checks_only_its_destinations(cli: Cli, tmp_path: Path) -> None:
    # given a bad Salesforce field and a bad Slack channel
    text = acme_with("      Priority: Normal", "      Priorty: Normal")
    file = write(tmp_path, text.replace('"#sales-meetings"', '"#nowhere"', 1))

    # when validated against the Slack connection only
    result = cli.fails("mappings", "validate", str(file), "--against", "acme-slack")

    # expect the channel reported and the Salesforce field not looked at
    assert "slack has no such place" in result.stderr and "Priorty" not in result.stderr


def test_a_provider_asking_to_slow_down_is_waited_out(
    cli: Cli, tmp_path: Path, sandbox: Sandbox
) -> None:
    # given Slack answering the channel lookup with a 429 and Retry-After: 1, once
    file = write(tmp_path, ACME)
    slack = sandbox.admin("slack")
    slack.arm("throttle", path="/api/conversations.info", retry_after=1, burst=1)
    try:
        # when the mapping is validated against Slack
        result = cli.ok("mappings", "validate", str(file), "--against", "acme-slack")
    finally:
        faults = slack.faults()
        slack.clear_faults()

    # expect: the 429 was answered, waited out, and the channel checked after it
    assert result.strip().endswith("ok against acme-slack")
    assert faults["injected"] == {"throttle": 1}


def test_a_yaml_mistake_is_located_before_any_provider_is_asked(cli: Cli, tmp_path: Path) -> None:
    text = acme_with("    for_each: action_items", "    for_each: action_item")
    file = write(tmp_path, text)
    result = cli.fails("mappings", "validate", str(file), "--against", "all")
    line = line_of(text, "for_each: action_item")
    assert f"{file}:{line} destinations[0].for_each:" in result.stderr


def test_versions_apply_with_diffs_and_roll_back(cli: Cli, tmp_path: Path) -> None:
    # given the example applied, then a changed copy
    first = write(tmp_path, ACME, "v1.yaml")
    second = write(tmp_path, acme_with("      Priority: Normal", "      Priority: High"), "v2.yaml")
    applied_1 = cli.ok("mappings", "apply", str(first), "--author", "dana", "--comment", "start")
    applied_2 = cli.ok("mappings", "apply", str(second), "--author", "sam")
    unchanged = cli.ok("mappings", "apply", str(second))

    # when version 1 is rolled back to
    rolled = cli.ok("mappings", "rollback", "--to", "1", "--author", "dana")

    # expect versions 1, 2, 3 with who and why, each diff against the one before
    assert applied_1.startswith("acme: version 1 by dana")
    assert "-      Priority: Normal\n+      Priority: High" in applied_2
    assert unchanged.strip() == "acme: unchanged, still version 2"
    assert rolled.startswith("acme: version 3 = version 1")
    assert "-      Priority: High\n+      Priority: Normal" in rolled
    history = [line.split("\t") for line in cli.ok("mappings", "list").strip().splitlines()]
    assert [(v[0], v[2], v[3]) for v in history] == [
        ("1", "dana", "start"),
        ("2", "sam", ""),
        ("3", "dana", "rollback to version 1"),
    ]
    assert cli.ok("mappings", "show", "--version", "3") == ACME
    assert cli.ok("mappings", "show") == ACME
    assert "+      Priority: High" in cli.ok("mappings", "show", "--version", "2", "--diff")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            ACME.replace("org: acme", "org: globex", 1),
            "connections.salesforce: no connection named 'acme-salesforce' in this org",
            id="another-orgs-mapping",
        ),
        pytest.param(
            ACME.replace("  asana: acme-asana", "  asana: acme-asama", 1),
            "no connection named 'acme-asama' in this org (fix: did you mean 'acme-asana'?)",
            id="unknown-connection",
        ),
    ],
)
def test_apply_refuses_a_mapping_that_is_not_the_orgs(
    cli: Cli, tmp_path: Path, text: str, message: str
) -> None:
    # given an org globex and a mapping naming connections it does not own
    cli.ok("orgs", "create", "globex")
    file = write(tmp_path, text)

    # expect the apply refused and no version stored
    assert message in cli.fails("mappings", "apply", str(file)).stderr
    assert "has no any mapping yet" in cli.fails("mappings", "show", "--org", "acme").stderr


def test_rollback_to_a_version_that_does_not_exist(cli: Cli, tmp_path: Path) -> None:
    cli.ok("mappings", "apply", str(write(tmp_path, ACME)))
    assert "org 'acme' has no version 7" in cli.fails("mappings", "rollback", "--to", "7").stderr
