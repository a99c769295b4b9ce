"""Review policies in the mapping: validated with the rest, and the conditions that ask."""

from __future__ import annotations

import jsonschema
import pytest

from mappings import MappingError, load_mapping, mapping_json_schema
from mappings.review import FieldFacts, ReviewPolicy, owner_choices, reasons, seconds
from meetsync.models import Attendee

MAPPING = """\
org: acme
connections: {salesforce: acme-salesforce}
destinations:
  - name: opportunity
    connector: salesforce
    action: update
    target: {object: Opportunity, id: "006000000000001"}
    fields:
      StageName: {from: crm.stage.value}
      Amount: {from: crm.amount.value}
    review:
      mode: approve
      fields: {StageName: approve}
      when: {stage_backwards: true, amount_change_pct: 20}
      approvers: [record_owner, "@deal-desk"]
      expire_after: 24h
      remind_after: 4h
"""


def only_problem(text: str) -> MappingError:
    with pytest.raises(MappingError) as caught:
        load_mapping(text)
    assert len(caught.value.problems) == 1, str(caught.value)
    return caught.value.problems[0]


def test_a_review_policy_loads_and_fits_the_json_schema() -> None:
    import yaml

    mapping = load_mapping(MAPPING)
    policy = mapping.destinations[0].review
    assert policy is not None and policy.expiry_s == 86400 and policy.reminder_s == 14400
    jsonschema.validate(yaml.safe_load(MAPPING), mapping_json_schema())


@pytest.mark.parametrize(
    ("old", "new", "path", "line", "message"),
    [
        pytest.param(
            "fields: {StageName: approve}",
            "fields: {Stage: approve}",
            "destinations[0].review.fields.Stage",
            13,
            "review names field 'Stage'",
            id="unknown-field",
        ),
        pytest.param(
            "fields: {StageName: approve}",
            "fields: {StageName: maybe}",
            "destinations[0].review.fields.StageName",
            13,
            "auto",
            id="unknown-mode",
        ),
        pytest.param(
            'approvers: [record_owner, "@deal-desk"]',
            "approvers: [the boss]",
            "destinations[0].review.approvers",
            15,
            "unknown approver 'the boss'",
            id="unknown-approver",
        ),
        pytest.param(
            "expire_after: 24h",
            "expire_after: tomorrow",
            "destinations[0].review.expire_after",
            16,
            "not a duration",
            id="bad-duration",
        ),
        pytest.param(
            "remind_after: 4h",
            "remind_after: 2d",
            "destinations[0].review.remind_after",
            17,
            "after the request expires",
            id="reminder-after-expiry",
        ),
        pytest.param(
            "when: {stage_backwards: true, amount_change_pct: 20}",
            "when: {amount_change_pct: -5}",
            "destinations[0].review.when.amount_change_pct",
            14,
            "greater than 0",
            id="negative-threshold",
        ),
    ],
)
def test_each_review_mistake_is_one_located_error(
    old: str, new: str, path: str, line: int, message: str
) -> None:
    assert old in MAPPING
    problem = only_problem(MAPPING.replace(old, new, 1))
    assert problem.path.startswith(path), problem.path
    assert problem.line == line
    assert message in problem.message


STAGES = ("Prospecting", "Qualification", "Proposal/Price Quote", "Closed Won")


@pytest.mark.parametrize(
    ("when", "facts", "expected"),
    [
        pytest.param(
            {}, FieldFacts("NextStep", "Demo", "Call"), ["approval required"], id="always"
        ),
        pytest.param({}, FieldFacts("NextStep", "Demo", "Demo"), [], id="no-change"),
        pytest.param(
            {"stage_backwards": True},
            FieldFacts("StageName", "Qualification", "Proposal/Price Quote", picklist=STAGES),
            ["moves back a stage"],
            id="stage-backwards",
        ),
        pytest.param(
            {"stage_backwards": True},
            FieldFacts("StageName", "Closed Won", "Qualification", picklist=STAGES),
            [],
            id="stage-forwards",
        ),
        pytest.param(
            {"amount_change_pct": 20},
            FieldFacts("Amount", 130000, 100000),
            ["changes by 30%"],
            id="amount-jump",
        ),
        pytest.param(
            {"amount_change_pct": 20}, FieldFacts("Amount", 110000, 100000), [], id="amount-small"
        ),
        pytest.param(
            {"has_value": True},
            FieldFacts("NextStep", "Demo", "Call"),
            ["replaces a value"],
            id="has-value",
        ),
        pytest.param({"has_value": True}, FieldFacts("NextStep", "Demo", None), [], id="empty"),
        pytest.param(
            {"confidence_below": 0.8},
            FieldFacts("NextStep", "Demo", None, confidence=0.55),
            ["confidence 0.55 < 0.8"],
            id="low-confidence",
        ),
    ],
)
def test_the_conditions_say_why_a_person_is_asked(
    when: dict[str, object], facts: FieldFacts, expected: list[str]
) -> None:
    assert reasons(ReviewPolicy(when=when), facts) == expected  # type: ignore[arg-type]


def test_auto_and_never_fields_are_not_asked_and_never_fields_are_dropped() -> None:
    policy = ReviewPolicy(mode="auto", fields={"Amount": "approve", "Description": "never"})
    fields = {"Amount": 1, "Description": "x", "NextStep": "y"}
    assert policy.held_fields(fields) == ["Amount"]
    assert policy.dropped_fields(fields) == ["Description"]
    assert reasons(policy, FieldFacts("NextStep", "y", "z")) == []


def test_an_owner_is_ambiguous_when_a_first_name_fits_two_people_or_has_no_email() -> None:
    people = [
        Attendee(name="Sam Patel", email="sam@acme.io", internal=True),
        Attendee(name="Sam Rivera", email="srivera@acme.io", internal=True),
        Attendee(name="Dana Reyes", email="dana@acme.io", internal=True),
    ]
    two_sams = owner_choices("Sam Patel", "sam@acme.io", "Sam will send it", people)
    assert [c["value"] for c in two_sams] == ["sam@acme.io", "srivera@acme.io"]
    assert owner_choices("Sam Patel", "sam@acme.io", "Sam Patel will send it", people) == []
    assert owner_choices("Dana Reyes", "dana@acme.io", "I will send it", people) == []
    no_email = owner_choices("Lee", None, "Lee will send it", people)
    assert len(no_email) == 3


def test_durations() -> None:
    assert [seconds(v) for v in (90, "90s", "30m", "24h", "2d")] == [90, 90, 1800, 86400, 172800]
