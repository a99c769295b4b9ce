"""plan_ops: a meeting, its Insights and a mapping in; the expected Ops out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors.base import Op
from extraction.schemas import (
    ActionItem,
    AmountFact,
    CrmFields,
    DateFact,
    Insights,
    ListFact,
    TextFact,
)
from mappings import Mapping, PlanError, load_mapping, plan_ops
from meetsync.models import Attendee, CrmRefs, MeetingOutput

EXAMPLES = Path(__file__).resolve().parents[1] / "mappings" / "examples"
URL = "https://notes.example/meetings/m-1001"


def customer_meeting(**changes: Any) -> MeetingOutput:
    """Acme's AE and SE meet Initech's IT director and an engineer."""
    data: dict[str, Any] = {
        "org_id": "acme",
        "meeting_id": "m-1001",
        "title": "Initech renewal sync",
        "start": "2026-11-20T22:30:00Z",
        "end": "2026-11-20T23:15:00Z",
        "timezone": "America/Los_Angeles",
        "attendees": [
            Attendee(name="Dana Reyes", email="dana@acme.io", internal=True),
            Attendee(name="Sam Patel", email="sam@acme.io", internal=True),
            Attendee(name="Bill Lumbergh", email="bill@initech.com"),
            Attendee(name="Peter Gibbons", email="peter@initech.com"),
        ],
        "summary": "Initech wants a two-year renewal. Security review is pending.",
    }
    return MeetingOutput(**(data | changes))


def internal_meeting() -> MeetingOutput:
    return customer_meeting(
        meeting_id="m-2002",
        title="Sprint 42 standup",
        attendees=[
            Attendee(name="Lee Chen", email="lee@acme.io", internal=True),
            Attendee(name="Marco Rossi", email="marco@acme.io", internal=True),
        ],
        summary="Marco is finishing the export job.",
    )


def item(title: str, **changes: Any) -> ActionItem:
    data: dict[str, Any] = {
        "title": title,
        "description": None,
        "owner": None,
        "owner_email": None,
        "due_date": None,
        "priority": None,
        "confidence": 0.9,
        "evidence": f"we agreed to {title.lower()}",
    }
    return ActionItem(**(data | changes))


def crm(**facts: Any) -> CrmFields:
    return CrmFields(**(dict.fromkeys(CrmFields.model_fields) | facts))


def customer_insights(**changes: Any) -> Insights:
    data: dict[str, Any] = {
        "action_items": [
            item(
                "Send the security questionnaire",
                owner="Sam Patel",
                owner_email="sam@acme.io",
                due_date="2026-11-25",
                confidence=0.92,
            ),
            item("Maybe look at SSO", confidence=0.3),
            item(
                "Share renewal pricing",
                description="Two-year term, 5% uplift.",
                owner="Dana",
                owner_email="dana@acme.io",
                confidence=0.8,
            ),
        ],
        "crm": crm(
            next_steps=TextFact(value="Send pricing and the questionnaire", evidence="a"),
            stage=TextFact(value="Negotiation", evidence="b"),
            amount=AmountFact(value=150000, currency="USD", evidence="c"),
            close_date=DateFact(value="2026-12-31", evidence="d"),
            competitors=ListFact(values=["Hooli"], evidence="e"),
        ),
    }
    return Insights(**(data | changes))


@pytest.fixture(scope="module")
def acme() -> Mapping:
    return load_mapping(EXAMPLES / "acme.yaml")


def by_dest(ops: list[Op], connector: str, action: str) -> list[Op]:
    return [op for op in ops if op.connector == connector and op.action == action]


def test_customer_meeting_plans_tasks_log_update_and_recap(acme: Mapping) -> None:
    # given a customer meeting with two confident items and one vague one
    ops = plan_ops(customer_meeting(), customer_insights(), acme, meeting_url=URL)

    # expect: two Asana tasks, one Salesforce Task, one Opportunity update, one Slack post
    assert [(op.connector, op.action) for op in ops] == [
        ("asana", "upsert_task"),
        ("asana", "upsert_task"),
        ("salesforce", "upsert"),
        ("salesforce", "update"),
        ("slack", "post_message"),
    ]
    assert {op.connection for op in ops} == {"acme-asana", "acme-salesforce", "acme-slack"}
    assert all(op.org_id == "acme" and op.meeting_id == "m-1001" for op in ops)

    questionnaire, pricing = by_dest(ops, "asana", "upsert_task")
    assert questionnaire.target == {
        "workspace": None,
        "project": "Customer Follow-ups",
        "section": "Inbox",
    }
    assert questionnaire.fields["name"] == "Send the security questionnaire"
    assert questionnaire.fields["assignee_email"] == "sam@acme.io"
    assert questionnaire.fields["due_on"] == "2026-11-25"
    assert questionnaire.fields["followers_emails"] == ["dana@acme.io", "sam@acme.io"]
    assert "we agreed to send the security questionnaire" in questionnaire.fields["notes"]
    assert URL in questionnaire.fields["notes"]
    assert "due_on" not in pricing.fields  # no due date said: omitted, not null

    (task,) = by_dest(ops, "salesforce", "upsert")
    assert task.target == {
        "object": "Task",
        "owner_email": "dana@acme.io",
        "who_emails": ["bill@initech.com", "peter@initech.com"],
        "what": {
            "object": "Opportunity",
            "id": None,
            "match_emails": ["bill@initech.com", "peter@initech.com"],
            "rule": "nearest_close_date",
            "required": False,
        },
    }
    assert task.fields["Subject"] == "Meeting: Initech renewal sync"
    assert task.fields["Status"] == "Completed"
    assert task.fields["ActivityDate"] == "2026-11-20"  # 14:30 in Los Angeles
    assert "Maybe look at SSO" not in task.fields["Description"]  # below min_confidence

    (update,) = by_dest(ops, "salesforce", "update")
    assert update.fields == {
        "NextStep": "Send pricing and the questionnaire",
        "StageName": "Negotiation/Review",
        "Amount": 150000.0,
        "CloseDate": "2026-12-31",
    }
    assert update.target["write_policy"] == {"Amount": "if_empty", "CloseDate": "unless_edited"}

    (recap,) = by_dest(ops, "slack", "post_message")
    assert recap.target["channel"] == "#sales-meetings"
    # and the recap waits for, and will link, the tasks, the meeting log and the update
    assert [(w["key"], w["title"]) for w in recap.target["after"]] == [
        (questionnaire.key, "Send the security questionnaire"),
        (pricing.key, "Share renewal pricing"),
        (task.key, None),
        (update.key, None),
    ]
    assert [i["title"] for i in recap.fields["action_items"]] == [
        "Send the security questionnaire",
        "Share renewal pricing",
    ]
    assert {"field": "Amount", "value": "$150,000"} in recap.fields["crm_changes"]
    assert recap.fields["dm_owners"] is False
    assert recap.fields["meeting_url"] == URL


def test_plan_is_deterministic(acme: Mapping) -> None:
    # given the same meeting planned twice from freshly built inputs
    first = plan_ops(customer_meeting(), customer_insights(), acme, meeting_url=URL)
    again = plan_ops(customer_meeting(), customer_insights(), acme, meeting_url=URL)

    # expect identical ops, keys and hashes, and keys unique
    assert [op.model_dump() for op in first] == [op.model_dump() for op in again]
    assert len({op.key for op in first}) == len(first)


def test_changed_value_changes_hash_not_key(acme: Mapping) -> None:
    # given a re-extraction in which the questionnaire's due date moved
    before = plan_ops(customer_meeting(), customer_insights(), acme, meeting_url=URL)
    moved = customer_insights()
    moved.action_items[0] = moved.action_items[0].model_copy(update={"due_date": "2026-11-27"})
    after = plan_ops(customer_meeting(), moved, acme, meeting_url=URL)

    # expect the same op keys; only the changed task's payload hash differs
    assert [op.key for op in before] == [op.key for op in after]
    changed = [
        b.key for b, a in zip(before, after, strict=True) if b.payload_hash != a.payload_hash
    ]
    assert changed == [before[0].key, before[2].key, before[4].key]  # task, log, recap


@pytest.mark.parametrize(
    ("title", "owner_email", "same"),
    [
        pytest.param("send the Security questionnaire!", "sam@acme.io", True, id="case-punct"),
        pytest.param("Send  the security   questionnaire", "SAM@acme.io", True, id="spaces"),
        pytest.param("Send the security questionnaire", "dana@acme.io", False, id="new-owner"),
        pytest.param("Send the pricing sheet", "sam@acme.io", False, id="new-title"),
    ],
)
def test_item_key_survives_cosmetic_rewording(
    acme: Mapping, title: str, owner_email: str, same: bool
) -> None:
    # given the first item re-extracted with a differently written title or owner
    base = plan_ops(customer_meeting(), customer_insights(), acme, meeting_url=URL)
    insights = customer_insights()
    insights.action_items[0] = insights.action_items[0].model_copy(
        update={"title": title, "owner_email": owner_email}
    )
    again = plan_ops(customer_meeting(), insights, acme, meeting_url=URL)

    # expect the task's key to stay only when the change is cosmetic
    assert (base[0].key == again[0].key) is same


def test_missing_facts_are_omitted_not_blanked(acme: Mapping) -> None:
    # given a customer meeting where only the next step was stated
    insights = customer_insights(crm=crm(next_steps=TextFact(value="Demo SSO", evidence="x")))
    ops = plan_ops(customer_meeting(), insights, acme, meeting_url=URL)

    # expect the update to carry NextStep only, and its write policy no absent field
    (update,) = by_dest(ops, "salesforce", "update")
    assert update.fields == {"NextStep": "Demo SSO"}
    assert "write_policy" not in update.target
    (recap,) = by_dest(ops, "slack", "post_message")
    assert recap.fields["crm_changes"] == [{"field": "Next steps", "value": "Demo SSO"}]


def test_no_crm_facts_means_no_update_op(acme: Mapping) -> None:
    # given a customer meeting in which no CRM fact was stated
    ops = plan_ops(customer_meeting(), customer_insights(crm=None), acme, meeting_url=URL)

    # expect no Opportunity update at all, and a recap without CRM changes
    assert by_dest(ops, "salesforce", "update") == []
    (recap,) = by_dest(ops, "slack", "post_message")
    assert "crm_changes" not in recap.fields


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        pytest.param(AmountFact(value=90000, currency="USD", evidence="x"), 90000.0, id="usd"),
        pytest.param(AmountFact(value=90000, currency=None, evidence="x"), 90000.0, id="unstated"),
        pytest.param(
            AmountFact(value=90000, currency="EUR", evidence="x"), None, id="eur-kept-out"
        ),
    ],
)
def test_amount_only_in_the_org_currency(
    acme: Mapping, amount: AmountFact, expected: float | None
) -> None:
    # given an amount stated in some currency
    insights = customer_insights(crm=crm(amount=amount))
    ops = plan_ops(customer_meeting(), insights, acme, meeting_url=URL)

    # expect USD (or unstated) amounts written as numbers, others left out
    updates = by_dest(ops, "salesforce", "update")
    assert (updates[0].fields.get("Amount") if updates else None) == expected


def test_known_opportunity_id_is_the_target(acme: Mapping) -> None:
    # given the notes pipeline already knows the Opportunity
    meeting = customer_meeting(crm=CrmRefs(opportunity_id="006000000000001AAA"))
    ops = plan_ops(meeting, customer_insights(), acme, meeting_url=URL)

    # expect the update and the Task's WhatId to point at it
    (update,) = by_dest(ops, "salesforce", "update")
    (task,) = by_dest(ops, "salesforce", "upsert")
    assert update.target["id"] == "006000000000001AAA"
    assert task.target["what"]["id"] == "006000000000001AAA"


def test_internal_meeting_goes_to_sprint_and_standup(acme: Mapping) -> None:
    # given an internal standup with an item owned by an Acme engineer and one by a vendor
    insights = Insights(
        action_items=[
            item("Finish the export job", owner="Marco", owner_email="marco@acme.io"),
            item("Send the new API keys", owner="Vendor Vic", owner_email="vic@vendor.com"),
        ]
    )
    ops = plan_ops(internal_meeting(), insights, acme, meeting_url=URL)

    # expect only the product team's destinations, and only the internally owned task
    assert [(op.connector, op.target.get("project") or op.target.get("channel")) for op in ops] == [
        ("asana", "Sprint 42"),
        ("slack", "#eng-standup"),
    ]
    assert ops[0].fields["name"] == "Finish the export job"
    assert ops[0].target["section"] == "Backlog"


def test_repeated_item_plans_one_op(acme: Mapping) -> None:
    # given the model said the same commitment twice
    insights = customer_insights()
    insights.action_items.append(
        insights.action_items[0].model_copy(update={"title": "SEND THE SECURITY QUESTIONNAIRE"})
    )
    ops = plan_ops(customer_meeting(), insights, acme, meeting_url=URL)

    # expect one Asana task for it, the first wording kept
    tasks = by_dest(ops, "asana", "upsert_task")
    assert [t.fields["name"] for t in tasks] == [
        "Send the security questionnaire",
        "Share renewal pricing",
    ]


CONDITIONS = """
org: acme
connections: {{slack: acme-slack}}
destinations:
  - name: recap
    connector: slack
    action: post_message
    when: {when}
    target: {{channel: "#sales-meetings"}}
    fields: {{title: "{{{{ meeting.title }}}}"}}
"""


@pytest.mark.parametrize(
    ("when", "fires"),
    [
        pytest.param("{external_attendees: true}", True, id="external-yes"),
        pytest.param("{external_attendees: false}", False, id="external-no"),
        pytest.param("{attendee_domains: [initech.com]}", True, id="domain-yes"),
        pytest.param("{attendee_domains: ['@globex.com']}", False, id="domain-no"),
        pytest.param("{title_matches: 'renewal'}", True, id="title-yes"),
        pytest.param("{title_matches: '^standup'}", False, id="title-no"),
        pytest.param("{title_excludes: 'RENEWAL'}", False, id="title-excluded"),
        pytest.param("{has_crm: [stage, amount]}", True, id="has-crm-yes"),
        pytest.param("{has_crm: [budget]}", False, id="has-crm-no"),
    ],
)
def test_meeting_conditions(when: str, fires: bool) -> None:
    # given a one-destination mapping with a condition
    mapping = load_mapping(CONDITIONS.format(when=when))

    # when the customer meeting is planned
    ops = plan_ops(customer_meeting(), customer_insights(), mapping, meeting_url=URL)

    # expect the recap only when the condition holds
    assert len(ops) == int(fires)


def test_mapping_of_another_org_is_refused(acme: Mapping) -> None:
    # given a meeting of another org
    meeting = customer_meeting(org_id="globex")

    # expect planning to refuse rather than write into Acme's systems
    with pytest.raises(PlanError, match="globex"):
        plan_ops(meeting, customer_insights(), acme, meeting_url=URL)


def test_duplicate_destination_names_are_refused() -> None:
    # given a mapping built in code with two destinations of the same name
    dest = {"name": "recap", "connector": "slack", "action": "post_message"}

    # expect the spec to refuse it, since their ops would share keys
    with pytest.raises(ValueError, match="two destinations are named 'recap'"):
        Mapping.model_validate(
            {"org": "acme", "connections": {"slack": "s"}, "destinations": [dest, dest]}
        )


@pytest.mark.parametrize("name", ["acme.yaml", "sales.yaml", "sales_events.yaml", "product.yaml"])
def test_examples_load_and_plan(name: str) -> None:
    # given each bundled example
    mapping = load_mapping(EXAMPLES / name)

    # when both kinds of meeting are planned
    ops = [
        *plan_ops(customer_meeting(), customer_insights(), mapping, meeting_url=URL),
        *plan_ops(internal_meeting(), customer_insights(), mapping, meeting_url=URL),
    ]

    # expect ops only for connectors the example connects, and every key distinct
    assert ops
    assert {op.connector for op in ops} <= set(mapping.connections)
    assert len({op.key for op in ops}) == len(ops)


def test_destination_write_policy_applies_to_its_fields() -> None:
    # given a destination whose fields default to if_empty, one overriding it
    mapping = load_mapping(
        """
org: acme
connections: {salesforce: acme-salesforce}
destinations:
  - name: opp
    connector: salesforce
    action: update
    write_policy: if_empty
    target: {object: Opportunity, id: null}
    fields:
      NextStep: {from: crm.next_steps.value}
      StageName: {from: crm.stage.value, write_policy: always}
      Description: {from: crm.budget.value}
"""
    )

    # when a meeting stating next step and stage is planned
    (op,) = plan_ops(customer_meeting(), customer_insights(), mapping, meeting_url=URL)

    # expect the policy only for fields the op carries and that are not `always`
    assert op.target["write_policy"] == {"NextStep": "if_empty"}
    assert set(op.fields) == {"NextStep", "StageName"}
