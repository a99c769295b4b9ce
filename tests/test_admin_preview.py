"""Preview shows exactly what the pipeline then writes, and writes nothing itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from admin.meeting_store import store_meeting
from admin.preview import Preview
from connectors.write_policy import HELD
from extraction.schemas import ActionItem, CrmFields, Insights, TextFact
from meetsync.db.models import InsightRecord, Meeting, OpRecord, Org
from meetsync.models import MeetingOutput
from sandbox.client import SandboxClient
from sandbox.server import Sandbox
from tests.admin_cli import Cli, add_sandbox_connections, make_cli
from workers import pushing, stages
from workers.runtime import Runtime

ACME = Path(__file__).resolve().parents[1] / "mappings" / "examples" / "acme.yaml"

MEETING = MeetingOutput.model_validate(
    {
        "org_id": "acme",
        "meeting_id": "preview-globex-1",
        "title": "Globex discovery call",
        "start": "2026-11-17T15:00:00Z",
        "end": "2026-11-17T15:40:00Z",
        "timezone": "America/New_York",
        "attendees": [
            {"name": "Dana Reyes", "email": "dana@acme.io", "internal": True},
            {"name": "Sam Patel", "email": "sam@acme.io", "internal": True},
            {"name": "Hank Scorpio", "email": "hank@globex.com", "internal": False},
        ],
        "transcript": [
            {
                "speaker": "Dana Reyes",
                "text": "I'll send you the security questionnaire by Friday.",
            },
            {"speaker": "Sam Patel", "text": "I will set up a sandbox workspace by next Tuesday."},
            {"speaker": "Dana Reyes", "text": "Next step is a technical deep dive."},
        ],
        "summary": "Discovery with Globex: reporting pain and a technical deep dive next.",
    }
)


def item(title: str, owner: str, email: str, due: str, quote: str) -> ActionItem:
    return ActionItem(
        title=title,
        description=None,
        owner=owner,
        owner_email=email,
        due_date=due,
        priority=None,
        confidence=0.9,
        evidence=quote,
    )


INSIGHTS = Insights(
    action_items=[
        item("Send the security questionnaire", "Dana Reyes", "dana@acme.io", "2026-11-20",
             "I'll send you the security questionnaire by Friday."),
        item("Set up a sandbox workspace", "Sam Patel", "sam@acme.io", "2026-11-24",
             "I will set up a sandbox workspace by next Tuesday."),
    ],
    crm=CrmFields(
        next_steps=TextFact(value="Technical deep dive with the data team",
                            evidence="Next step is a technical deep dive."),
        stage=TextFact(value="proposal", evidence="Next step is a technical deep dive."),
        amount=None, close_date=None, competitors=None, pain_points=None,
        decision_makers=None, budget=None, timeline=None, risks=None,
    ),
)  # fmt: skip


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_sandbox: Sandbox) -> Cli:
    """Org acme with its sandbox connections, the example mapping, and one stored meeting."""
    cli = make_cli(tmp_path, monkeypatch)
    cli.ok("orgs", "create", "acme")
    add_sandbox_connections(cli, clean_sandbox)
    cli.ok("mappings", "apply", str(ACME))
    with cli.session() as session:
        stored = store_meeting(session, MEETING)
        session.add(
            InsightRecord(
                meeting_id=stored.meeting_id,
                cache_key="given",
                insights=INSIGHTS.model_dump(mode="json"),
            )
        )
    return cli


def held(sandbox: Sandbox) -> dict[str, Any]:
    def state(name: str) -> dict[str, Any]:
        return SandboxClient(sandbox.origins[name], verify=sandbox.ca_file).state()

    salesforce = state("salesforce")["records"]
    return {
        "tasks": state("asana")["tasks"],
        "messages": state("slack")["messages"],
        "sf_tasks": salesforce.get("Task", []),
        "opportunities": salesforce.get("Opportunity", []),
    }


def preview(cli: Cli) -> Preview:
    return Preview.model_validate_json(
        cli.ok("mappings", "preview", "--meeting", MEETING.meeting_id, "--json")
    )


def ledger(cli: Cli) -> list[OpRecord]:
    with cli.session() as session:
        return list(session.scalars(select(OpRecord).order_by(OpRecord.key)))


def as_ops(rows: list[OpRecord]) -> list[dict[str, Any]]:
    """Ledger rows in the shape `Preview.as_ops()` shows them."""
    return [
        {
            "key": r.key,
            "connector": r.connector,
            "connection": r.connection,
            "action": r.action,
            "target": r.target,
            "fields": r.fields,
            "payload_hash": r.payload_hash,
        }
        for r in rows
    ]


def run_pipeline(cli: Cli) -> None:
    """The pipeline's plan and push stages, as the workers run them."""
    runtime = Runtime(cli.settings())
    with cli.session() as session:
        meeting_id = session.scalars(select(InsightRecord.meeting_id).distinct()).one()
    for planned in stages.plan(runtime, meeting_id):
        assert pushing.push(runtime, planned.key).state == "done"


def op_of(result: Preview, connector: str, action: str) -> Any:
    return next(op for op in result.ops if (op.connector, op.action) == (connector, action))


def test_the_pipeline_writes_exactly_what_preview_showed(cli: Cli, clean_sandbox: Sandbox) -> None:
    # given the providers as seeded, and Globex's opportunity as it is now
    before = held(clean_sandbox)
    globex = next(o for o in before["opportunities"] if o["Name"].startswith("Globex"))

    # when the meeting is previewed
    shown = preview(cli)

    # expect nothing written anywhere, and the opportunity's current values next to the new
    assert held(clean_sandbox) == before and ledger(cli) == []
    assert shown.mapping_version == 1 and shown.insights_from.startswith("stored insights")
    update = op_of(shown, "salesforce", "update")
    fields = {f.name: f for f in update.fields}
    assert fields["NextStep"].new == "Technical deep dive with the data team"
    assert fields["NextStep"].current == globex["NextStep"]
    assert fields["StageName"].new == "Proposal/Price Quote"
    assert fields["StageName"].current == globex["StageName"]
    assert all(op.ledger == "new" for op in shown.ops)
    assert op_of(shown, "salesforce", "upsert").exists is False

    # when the pipeline plans and pushes the same meeting
    run_pipeline(cli)

    # expect the ledger to hold exactly the previewed ops, planned with version 1
    rows = ledger(cli)
    planned = as_ops(rows)
    assert planned == sorted(shown.as_ops(), key=lambda op: op["key"])
    assert {r.mapping_version for r in rows} == {1}

    # and the providers to hold what preview showed
    after = held(clean_sandbox)
    names = {
        f.new for op in shown.ops if op.connector == "asana" for f in op.fields if f.name == "name"
    }
    assert {t["name"] for t in after["tasks"]} - {t["name"] for t in before["tasks"]} == names
    opportunity = next(o for o in after["opportunities"] if o["Id"] == globex["Id"])
    assert opportunity["NextStep"] == fields["NextStep"].new
    assert opportunity["StageName"] == fields["StageName"].new
    subject = {f.name: f.new for f in op_of(shown, "salesforce", "upsert").fields}["Subject"]
    assert [t for t in after["sf_tasks"] if t["Subject"].startswith(subject)]
    assert len(after["messages"]) == len(before["messages"]) + 1


def test_a_second_preview_finds_everything_in_place(cli: Cli) -> None:
    # given the meeting pushed once
    run_pipeline(cli)

    # when it is previewed again
    shown = preview(cli)

    # expect every op unchanged in the ledger, and the provider values equal to the new ones
    assert {op.ledger for op in shown.ops} == {"unchanged"}
    for op in shown.ops:
        if op.connector != "slack":
            assert op.exists is True
    update = op_of(shown, "salesforce", "update")
    assert [f.changes for f in update.fields] == [False] * len(update.fields)
    task = op_of(shown, "asana", "upsert_task")
    assert {f.name: f.changes for f in task.fields}["name"] is False


def test_ops_record_the_mapping_version_they_were_planned_with(cli: Cli, tmp_path: Path) -> None:
    # given the meeting pushed with version 1
    run_pipeline(cli)

    # when version 2 changes only the Salesforce Task's priority and the meeting is replanned
    changed = tmp_path / "acme.yaml"
    changed.write_text(ACME.read_text().replace("Priority: Normal", "Priority: High", 1))
    cli.ok("mappings", "apply", str(changed))
    shown = preview(cli)
    run_pipeline(cli)

    # expect preview to call that op changed, and the ledger to say which version planned each op
    assert {op.ledger for op in shown.ops if op.action != "upsert"} == {"unchanged"}
    assert op_of(shown, "salesforce", "upsert").ledger == "changed"
    versions = {(r.connector, r.action): r.mapping_version for r in ledger(cli)}
    assert versions[("salesforce", "upsert")] == 2
    assert versions[("salesforce", "update")] == 1


def test_preview_of_a_draft_mapping_uses_the_draft(cli: Cli, tmp_path: Path) -> None:
    # given a draft that sends the recap to another channel
    draft = tmp_path / "draft.yaml"
    draft.write_text(ACME.read_text().replace("#sales-meetings", "#customer-escalations"))

    # when the stored meeting is previewed with it
    shown = Preview.model_validate_json(
        cli.ok("mappings", "preview", "--meeting", MEETING.meeting_id, "--mapping", str(draft),
               "--json")
    )  # fmt: skip

    # expect the draft's channel, no version number, and nothing stored
    assert op_of(shown, "slack", "post_message").target["channel"] == "#customer-escalations"
    assert shown.mapping_version is None
    assert len(cli.ok("mappings", "list").strip().splitlines()) == 1


def test_preview_prints_current_and_new_values(cli: Cli) -> None:
    text = cli.ok("mappings", "preview", "--meeting", MEETING.meeting_id)
    assert "nothing written" in text.splitlines()[0]
    assert "  NextStep: Technical deep dive with the data team   (now: " in text
    assert "salesforce update via acme-salesforce [new] exists" in text


def test_preview_names_the_fields_a_write_policy_would_keep(cli: Cli, tmp_path: Path) -> None:
    # given the meeting pushed once, so Globex's opportunity holds a next step
    run_pipeline(cli)

    # when a draft lets NextStep only fill a blank, and the meeting is previewed with it
    draft = tmp_path / "draft.yaml"
    draft.write_text(
        ACME.read_text().replace(
            "NextStep: {from: crm.next_steps.value, transform: [{truncate: {max: 255, at: word}}]}",
            "NextStep: {from: crm.next_steps.value, write_policy: if_empty}",
        )
    )
    shown = Preview.model_validate_json(
        cli.ok("mappings", "preview", "--meeting", MEETING.meeting_id, "--mapping", str(draft),
               "--json")
    )  # fmt: skip

    # expect NextStep reported as kept, with the reason, and StageName written as ever
    fields = {f.name: f for f in op_of(shown, "salesforce", "update").fields}
    assert fields["NextStep"].policy == "if_empty"
    assert fields["NextStep"].skipped == HELD
    assert fields["StageName"].skipped is None


def test_a_reworded_item_previews_as_the_update_the_pipeline_then_makes(cli: Cli) -> None:
    # given the meeting pushed once
    run_pipeline(cli)
    written = {r.key for r in ledger(cli)}

    # when a re-extraction words one item differently and the meeting is previewed
    reworded = INSIGHTS.model_copy(
        update={
            "action_items": [
                item("Send over the security questionnaire", "Dana Reyes", "dana@acme.io",
                     "2026-11-20", "I'll send you the security questionnaire by Friday."),
                INSIGHTS.action_items[1],
            ]
        }
    )  # fmt: skip
    with cli.session() as session:
        meeting_id = session.scalars(select(InsightRecord.meeting_id)).first()
        session.add(
            InsightRecord(
                meeting_id=meeting_id,
                cache_key="reworded",
                insights=reworded.model_dump(mode="json"),
            )
        )
    shown = preview(cli)

    # expect the task already written to be updated under its key, not a second one added
    assert {op.key for op in shown.ops} == written
    task = next(
        op
        for op in shown.ops
        if op.connector == "asana"
        and {f.name: f.new for f in op.fields}["name"] == "Send over the security questionnaire"
    )
    assert task.ledger == "changed"

    # and the pipeline to plan exactly what preview showed
    run_pipeline(cli)
    rows = {r.key: r for r in ledger(cli)}
    assert {k: rows[k].payload_hash for k in rows} == {op.key: op.payload_hash for op in shown.ops}


def test_preview_flags_a_value_the_picklist_refuses(cli: Cli, tmp_path: Path) -> None:
    # given a draft that maps the stage to a value Salesforce's StageName picklist lacks
    draft = tmp_path / "draft.yaml"
    draft.write_text(
        ACME.read_text().replace("proposal: Proposal/Price Quote", "proposal: Proposal Sent")
    )

    # when the meeting is previewed with it
    text = cli.ok("mappings", "preview", "--meeting", MEETING.meeting_id, "--mapping", str(draft))

    # expect the value flagged under its field, before anything is pushed
    lines = text.splitlines()
    stage = next(i for i, line in enumerate(lines) if line.startswith("  StageName: Proposal Sent"))
    assert lines[stage + 1].startswith("    REFUSED: not a value of the StageName picklist")


def test_a_second_preview_prints_no_change_from_null_for_unchanged_ops(cli: Cli) -> None:
    # given the meeting pushed once, when it is previewed again as text
    run_pipeline(cli)
    text = cli.ok("mappings", "preview", "--meeting", MEETING.meeting_id)

    # expect no "(now: null)" under an op whose ledger says it is unchanged
    blocks = text.split("\n\n")[1:]
    unchanged = [b for b in blocks if "[unchanged]" in b.splitlines()[0]]
    assert unchanged and not [b for b in unchanged if "(now: null)" in b], unchanged


RULES = {
    "preferences": [
        {
            "text": "security reviews go to the Legal project",
            "when": {"item_text_contains": "Security Questionnaire", "connector": "asana"},
            "then": {"set_target": {"project": "Legal"}, "set": {"due_on": "2026-11-19"}},
        },
        {
            "text": "never propose a stage change from calls with Globex",
            "when": {"attendee_domain": "@Globex.com"},
            "then": {"skip_fields": ["StageName"]},
        },
        {"text": "tasks for legal review go to the Legal project"},  # the prompt's only
    ]
}


def test_preferences_change_the_plan_and_preview_shows_what_the_pipeline_plans(
    cli: Cli, tmp_path: Path
) -> None:
    # given the org's preferences: two rules and one sentence for the prompt
    (rules := tmp_path / "memory.yaml").write_text(yaml.safe_dump(RULES))
    cli.ok("memory", "import", str(rules))

    # when the meeting is previewed
    shown = preview(cli)

    # expect the questionnaire's task in Legal, due a day earlier; the other task as mapped
    tasks = {
        {f.name: f.new for f in op.fields}["name"]: op
        for op in shown.ops
        if op.connector == "asana"
    }
    questionnaire = tasks["Send the security questionnaire"]
    assert questionnaire.target["project"] == "Legal"
    assert {f.name: f.new for f in questionnaire.fields}["due_on"] == "2026-11-19"
    assert tasks["Set up a sandbox workspace"].target["project"] == "Customer Follow-ups"
    # and no stage change proposed from a call with Globex, the next step as ever
    update = {f.name for f in op_of(shown, "salesforce", "update").fields}
    assert "StageName" not in update and "NextStep" in update

    # when the pipeline plans the same meeting
    runtime = Runtime(cli.settings())
    with cli.session() as session:
        meeting_id = session.scalars(select(InsightRecord.meeting_id)).one()
    stages.plan(runtime, meeting_id)

    # expect the ledger to hold exactly what preview showed
    rows = ledger(cli)
    planned = as_ops(rows)
    assert planned == sorted(shown.as_ops(), key=lambda op: op["key"])


def test_preview_picks_the_insights_the_plan_stage_picks_under_memory(cli: Cli) -> None:
    # given memory that a meeting recalls (an attendee), so the plan stage's key holds it
    cli.ok("memory", "add", "person", "Dana Reyes", "--set", "email=dana@acme.io")
    runtime = Runtime(cli.settings())
    with cli.session() as session:
        row = session.scalars(select(Meeting)).one()
        profile = stages.recalled_profile(runtime, session, row, session.get(Org, row.org_id))
        key = stages.cache_key(runtime, session, row, profile)
        # the record extracted under that key, then a newer one under another key
        planned = InsightRecord(meeting_id=row.id, cache_key=key, insights=_one_item("Call Hank"))
        session.add(planned)
        session.flush()
        session.add(
            InsightRecord(meeting_id=row.id, cache_key="other", insights=_one_item("Email Hank"))
        )
        chosen, meeting_id = planned.id, row.id

    # when the meeting is previewed, then planned
    shown = preview(cli)
    stages.plan(runtime, meeting_id)

    # expect both to use the record under the plan stage's key
    assert shown.insights_from == f"stored insights #{chosen}"
    names = {
        f.new for op in shown.ops if op.connector == "asana" for f in op.fields if f.name == "name"
    }
    assert names == {"Call Hank"}
    assert {r.key: r.payload_hash for r in ledger(cli)} == {
        op.key: op.payload_hash for op in shown.ops
    }


def _one_item(title: str) -> dict[str, Any]:
    only = item(
        title,
        "Dana Reyes",
        "dana@acme.io",
        "2026-11-20",
        "I'll send you the security questionnaire by Friday.",
    )
    return INSIGHTS.model_copy(update={"action_items": [only]}).model_dump(mode="json")
