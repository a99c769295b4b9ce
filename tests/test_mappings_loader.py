"""load_mapping: every mistake an admin can make is one clear error with path and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from mappings import MappingError, load_mapping

VALID = """\
org: acme
connections:
  salesforce: acme-salesforce
  slack: acme-slack
destinations:
  - name: recap
    connector: slack
    action: post_message
    target:
      channel: "#sales-meetings"
    fields:
      title: "{{ meeting.title }}"
  - name: opportunity
    connector: salesforce
    action: update
    target:
      object: Opportunity
      id: {from: meeting.crm.opportunity_id}
    fields:
      StageName:
        from: crm.stage.value
        transform:
          - map: {negotiation: Negotiation/Review}
"""


def broken(old: str, new: str) -> str:
    assert old in VALID
    return VALID.replace(old, new, 1)


def only_problem(text: str) -> MappingError:
    with pytest.raises(MappingError) as caught:
        load_mapping(text)
    assert len(caught.value.problems) == 1, str(caught.value)
    return caught.value.problems[0]


def test_valid_mapping_loads() -> None:
    mapping = load_mapping(VALID)
    assert [d.name for d in mapping.destinations] == ["recap", "opportunity"]
    assert mapping.line_of("destinations[1].fields.StageName") == 20


@pytest.mark.parametrize(
    ("text", "path", "line", "message", "fix"),
    [
        pytest.param(
            broken("  slack: acme-slack\n", "  slack: acme-slack\n bad: [\n"),
            "",
            5,
            "YAML syntax error",
            "indentation",
            id="yaml-syntax",
        ),
        pytest.param(
            broken("connections:", "conections:"),
            "conections",
            2,
            "unknown key 'conections'",
            "did you mean 'connections'?",
            id="top-level-typo",
        ),
        pytest.param(
            broken("    action: post_message\n", "    action: post_message\n    wen: {}\n"),
            "destinations[0].wen",
            9,
            "unknown key 'wen'",
            "did you mean 'when'?",
            id="destination-typo",
        ),
        pytest.param(
            broken(
                "    target:\n      channel",
                "    when: {min_confidance: 0.5}\n    target:\n      channel",
            ),
            "destinations[0].when.min_confidance",
            9,
            "unknown key 'min_confidance'",
            "did you mean 'min_confidence'?",
            id="condition-typo",
        ),
        pytest.param(
            broken("{from: meeting.crm.opportunity_id}", "{form: meeting.crm.opportunity_id}"),
            "destinations[1].target.id.form",
            18,
            "unknown key 'form'",
            "did you mean 'from'?",
            id="assignment-typo",
        ),
        pytest.param(
            broken("{{ meeting.title }}", "{{ meeting.titel }}"),
            "destinations[0].fields.title",
            12,
            "meeting has no 'titel'",
            "did you mean 'title'?",
            id="template-unknown-attribute",
        ),
        pytest.param(
            broken("{{ meeting.title }}", "{{ meting.title }}"),
            "destinations[0].fields.title",
            12,
            "the context has no 'meting'",
            "did you mean 'meeting'?",
            id="template-unknown-variable",
        ),
        pytest.param(
            broken("{{ meeting.title }}", "{{ item.title }}"),
            "destinations[0].fields.title",
            12,
            "the context has no 'item'",
            "for_each: action_items",
            id="item-outside-action-items",
        ),
        pytest.param(
            broken("{{ meeting.title }}", "{{ meeting.title }"),
            "destinations[0].fields.title",
            12,
            "template does not compile",
            "braces",
            id="template-syntax",
        ),
        pytest.param(
            broken("from: crm.stage.value", "from: crm.stage.valeu"),
            "destinations[1].fields.StageName.from",
            21,
            "crm.stage has no 'valeu'",
            "did you mean 'value'?",
            id="from-path-typo",
        ),
        pytest.param(
            broken("  salesforce: acme-salesforce\n", ""),
            "destinations[1].connector",
            13,
            "connector 'salesforce' has no connection",
            "add `salesforce: <connection name>` under connections",
            id="connector-without-connection",
        ),
        pytest.param(
            broken("action: update", "action: updte"),
            "destinations[1].action",
            15,
            "salesforce has no action 'updte'",
            "did you mean 'update'?",
            id="unknown-action",
        ),
        pytest.param(
            broken("negotiation: Negotiation/Review", "negotiation: null"),
            "destinations[1].fields.StageName.transform[0]",
            23,
            "'negotiation' maps to nothing",
            "picklist",
            id="picklist-map-to-nothing",
        ),
        pytest.param(
            broken("- map: {negotiation: Negotiation/Review}", "- mapp: {negotiation: x}"),
            "destinations[1].fields.StageName.transform[0]",
            23,
            "unknown transform 'mapp'",
            "did you mean 'map'?",
            id="unknown-transform",
        ),
        pytest.param(
            broken("- map: {negotiation: Negotiation/Review}", "- truncate: {max: 10}"),
            "destinations[1].fields.StageName.transform[0]",
            23,
            "needs option 'at'",
            None,
            id="truncate-without-rule",
        ),
        pytest.param(
            broken("    connector: slack\n", "    connector: slack\n    for_each: action_item\n"),
            "destinations[0].for_each",
            8,
            "'action_item' is not allowed here",
            "did you mean 'action_items'?",
            id="for-each-typo",
        ),
        pytest.param(
            broken("  slack: acme-slack\n", "  slack: acme-slack\n  slack: other-slack\n"),
            "connections.slack",
            5,
            "key 'slack' is given twice",
            "remove or merge",
            id="duplicate-yaml-key",
        ),
        pytest.param(
            broken("  - name: opportunity", "  - name: recap"),
            "destinations[1].name",
            13,
            "two destinations are named 'recap' (destinations[0] and this one)",
            "give each destination its own name",
            id="duplicate-destination",
        ),
        pytest.param(
            broken(
                "    target:\n      channel",
                "    when: {title_matches: '(renewal'}\n    target:\n      channel",
            ),
            "destinations[0].when.title_matches",
            9,
            "not a valid regular expression",
            None,
            id="bad-regex",
        ),
        pytest.param(
            broken("org: acme\n", ""),
            "org",
            None,
            "required key 'org' is missing",
            "add org",
            id="missing-org",
        ),
        pytest.param(
            broken(
                "      id: {from: meeting.crm.opportunity_id}",
                "      id: {from: meeting.crm.opportunity_id, write_policy: if_empty}",
            ),
            "destinations[1].target.id.write_policy",
            18,
            "write_policy applies to fields",
            "move write_policy",
            id="write-policy-on-target",
        ),
        pytest.param(
            broken(
                "    action: post_message\n", "    action: post_message\n    after: [oportunity]\n"
            ),
            "destinations[0].after[0]",
            9,
            "after names no destination 'oportunity'",
            "did you mean 'opportunity'?",
            id="after-unknown-destination",
        ),
        pytest.param(
            broken("    action: post_message\n", "    action: post_message\n    after: [recap]\n"),
            "destinations[0].after[0]",
            9,
            "after names itself",
            None,
            id="after-itself",
        ),
    ],
)
def test_each_mistake_is_one_clear_error(
    text: str, path: str, line: int | None, message: str, fix: str | None
) -> None:
    # given a mapping with one mistake, when it is loaded
    problem = only_problem(text)

    # expect an error naming where it is, what is wrong and how to fix it
    assert problem.path == path
    assert problem.line == line
    assert message in problem.message
    if fix is None:
        assert problem.fix is None or problem.fix
    else:
        assert problem.fix is not None and fix in problem.fix
    assert message in str(problem)


def test_after_waits_one_level_only() -> None:
    # given a recap waiting for the update, which waits for the recap
    text = broken(
        "    action: post_message\n", "    action: post_message\n    after: [opportunity]\n"
    )
    text = text.replace("    action: update\n", "    action: update\n    after: [recap]\n")

    # when it is loaded, expect each wait refused as a chain
    with pytest.raises(MappingError) as caught:
        load_mapping(text)
    assert [p.path for p in caught.value.problems] == [
        "destinations[0].after[0]",
        "destinations[1].after[0]",
    ]
    assert all("itself waits for others" in p.message for p in caught.value.problems)


def test_every_problem_is_reported_at_once() -> None:
    # given a mapping with three independent mistakes
    text = broken("{{ meeting.title }}", "{{ meeting.titel }}")
    text = text.replace("action: update", "action: updte").replace(
        "negotiation: Negotiation/Review", "negotiation: ''"
    )

    # when it is loaded
    with pytest.raises(MappingError) as caught:
        load_mapping(text)

    # expect all three, in file order, in the raised error and its text
    assert [p.line for p in caught.value.problems] == [12, 15, 23]
    assert str(caught.value).startswith("3 problems in the mapping")
    assert "titel" in str(caught.value) and "updte" in str(caught.value)


def test_errors_name_the_file(tmp_path: Path) -> None:
    # given a mapping file with a typo
    path = tmp_path / "globex.yaml"
    path.write_text(broken("connections:", "conections:"))

    # expect the error to start with file:line
    problem = only_problem_from(path)
    assert problem.file == str(path)
    assert str(problem).startswith(f"{path}:2 conections: unknown key")


def only_problem_from(path: Path) -> MappingError:
    with pytest.raises(MappingError) as caught:
        load_mapping(path)
    assert len(caught.value.problems) == 1
    return caught.value.problems[0]


def test_a_path_given_as_text_is_read(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text(VALID)
    assert load_mapping(str(path)).org == "acme"


def test_missing_file_is_a_mapping_error(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="cannot read the mapping"):
        load_mapping(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("- just\n- a list\n", id="list"),
    ],
)
def test_a_mapping_must_be_an_object(text: str) -> None:
    with pytest.raises(MappingError, match="must be a YAML mapping"):
        load_mapping(text)
