"""Transforms, sandboxed templates and the exported JSON Schema of mapping files."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from mappings.engine import render
from mappings.errors import PlanError
from mappings.schema import mapping_json_schema
from mappings.spec import Assignment
from mappings.templates import compile_template
from mappings.transforms import TransformContext, apply_steps, parse_step

EXAMPLES = Path(__file__).resolve().parents[1] / "mappings" / "examples"
LOS_ANGELES = TransformContext(timezone="America/Los_Angeles")


def run(value: Any, *steps: Any) -> Any:
    return apply_steps(value, [parse_step(s) for s in steps], LOS_ANGELES)


@pytest.mark.parametrize(
    ("value", "steps", "expected"),
    [
        pytest.param(
            datetime(2026, 11, 21, 2, 0, tzinfo=UTC), ["date"], "2026-11-20", id="date-in-zone"
        ),
        pytest.param(
            "2026-11-21T02:00:00Z", [{"date": {"tz": "UTC"}}], "2026-11-21", id="date-utc"
        ),
        pytest.param("2026-11-25", ["date"], "2026-11-25", id="date-kept"),
        pytest.param("next quarter", ["date"], None, id="date-unparseable-dropped"),
        pytest.param(
            "2026-11-20T15:00:00Z",
            [{"datetime": {"tz": "Europe/Paris"}}],
            "2026-11-20T16:00:00+01:00",
            id="datetime-zone",
        ),
        pytest.param(date(2026, 12, 30), [{"add_days": 3}], "2027-01-02", id="add-days"),
        pytest.param("2026-11-25", [{"format_date": "%b %d, %Y"}], "Nov 25, 2026", id="fmt"),
        pytest.param(
            "Negotiation",
            [{"map": {"negotiation": "Negotiation/Review"}}],
            "Negotiation/Review",
            id="map-case-insensitive",
        ),
        pytest.param("Verbal yes", [{"map": {"won": "Closed Won"}}], None, id="map-unmapped"),
        pytest.param(
            "Verbal yes",
            [{"map": {"won": "Closed Won", "*": "Qualification"}}],
            "Qualification",
            id="map-fallback",
        ),
        pytest.param("$1.2m", ["number"], 1_200_000.0, id="number-suffix"),
        pytest.param("120,000.456", [{"number": {"round": 2}}], 120000.46, id="number-round"),
        pytest.param("about 40k", ["integer"], None, id="number-words-dropped"),
        pytest.param("40k", ["integer"], 40000, id="integer"),
        pytest.param(
            {"value": 5e4, "currency": "EUR", "evidence": "x"},
            [{"currency": {"expect": "USD"}}],
            None,
            id="currency-other",
        ),
        pytest.param(
            {"value": 5e4, "currency": "usd", "evidence": "x"},
            [{"currency": {"expect": "USD"}}],
            50000.0,
            id="currency-same",
        ),
        pytest.param(120000, ["format_money"], "$120,000", id="money-usd"),
        pytest.param(
            {"value": 99.5, "currency": "CHF"},
            [{"format_money": {"decimals": 2}}],
            "99.50 CHF",
            id="money-other-code",
        ),
        pytest.param(["Hooli", None, "", "Initrode"], ["join"], "Hooli, Initrode", id="join"),
        pytest.param(["a", "b"], [{"join": " / "}], "a / b", id="join-separator"),
        pytest.param(
            "The quick brown fox jumps",
            [{"truncate": {"max": 12, "at": "char"}}],
            "The quick b…",
            id="truncate-char",
        ),
        pytest.param(
            "The quick brown fox jumps",
            [{"truncate": {"max": 15, "at": "word"}}],
            "The quick…",
            id="truncate-word",
        ),
        pytest.param(
            "One. Two three four five.",
            [{"truncate": {"max": 15, "at": "sentence"}}],
            "One.",
            id="truncate-sentence",
        ),
        pytest.param("short", [{"truncate": {"max": 10, "at": "word"}}], "short", id="no-cut"),
        pytest.param("", [{"default": "n/a"}], "n/a", id="default-when-empty"),
        pytest.param(None, ["upper", {"default": "TBD"}], "TBD", id="empty-passes-to-default"),
        pytest.param("x", [{"default": "n/a"}], "x", id="default-unused"),
        pytest.param("  Mixed Case ", ["strip", "lower"], "mixed case", id="text"),
        pytest.param([None, "b", "c"], ["first"], "b", id="first"),
        pytest.param(
            [
                {"title": "A", "confidence": 0.9, "owner_internal": True},
                {"title": "B", "confidence": 0.4, "owner_internal": True},
                {"title": "C", "confidence": 0.9, "owner_internal": False},
            ],
            [{"where": {"min_confidence": 0.5, "owner_internal": True}}, {"pick": ["title"]}],
            [{"title": "A"}],
            id="where-pick",
        ),
        pytest.param(
            {
                "stage": {"value": "Negotiation", "evidence": "x"},
                "budget": None,
                "competitors": {"values": ["Hooli"], "evidence": "y"},
            },
            ["facts"],
            [
                {"field": "Stage", "value": "Negotiation"},
                {"field": "Competitors", "value": "Hooli"},
            ],
            id="facts",
        ),
    ],
)
def test_transforms(value: Any, steps: list[Any], expected: Any) -> None:
    assert run(value, *steps) == expected


@pytest.mark.parametrize(
    ("step", "message"),
    [
        pytest.param("uper", "unknown transform 'uper'; did you mean 'upper'?", id="typo"),
        pytest.param({"truncate": {"max": 5}}, "needs option 'at'", id="truncate-rule"),
        pytest.param({"truncate": {"max": 5, "at": "line"}}, "char, word or sentence", id="at"),
        pytest.param({"map": {"won": ""}}, "'won' maps to nothing", id="map-nothing"),
        pytest.param({"map": {}}, "non-empty map", id="map-empty"),
        pytest.param({"date": {"tz": "Mars/Olympus"}}, "unknown time zone", id="zone"),
        pytest.param({"date": {"zone": "UTC"}}, "unknown option 'zone'", id="option-typo"),
        pytest.param({"currency": {"expect": "dollars"}}, "ISO 4217", id="currency-code"),
        pytest.param({"upper": True}, "takes no arguments", id="no-args"),
        pytest.param({"upper": None, "lower": None}, "one name", id="two-names"),
    ],
)
def test_bad_steps_say_what_is_wrong(step: Any, message: str) -> None:
    with pytest.raises(ValueError, match=None) as caught:
        parse_step(step)
    assert message in str(caught.value)


def test_single_expression_keeps_its_type() -> None:
    # given templates that are one expression, and one that mixes text in
    context = {"meeting": {"external_emails": ["a@x.com"], "minutes": 45}}

    # expect native lists and numbers from expressions, text from the mixed one
    assert compile_template("{{ meeting.external_emails }}").render(context) == ["a@x.com"]
    assert compile_template("{{ meeting.minutes * 2 }}").render(context) == 90
    assert compile_template("{{ meeting.minutes }} min").render(context) == "45 min"


def test_missing_value_renders_to_nothing() -> None:
    # given a CRM fact the meeting did not state
    context = {"crm": {"stage": None}}

    # expect None (the field is then omitted), not an error or the text "None"
    assert compile_template("{{ crm.stage.value }}").render(context) is None
    assert compile_template("Stage: {{ crm.stage.value }}").render(context) is None


def test_templates_cannot_escape_the_sandbox() -> None:
    # given a template that reaches for Python internals
    value = "{{ meeting.__class__.__mro__ }}"

    # expect planning to refuse it
    with pytest.raises(PlanError, match="unsafe"):
        render(value, {"meeting": {}}, LOS_ANGELES)


def test_assignment_default_applies_after_transforms() -> None:
    # given an assignment whose mapped value is unknown
    value = Assignment.model_validate(
        {
            "from": "crm.stage.value",
            "transform": [{"map": {"won": "Closed Won"}}],
            "default": "Qualification",
        }
    )

    # expect the default
    assert render(value, {"crm": {"stage": {"value": "maybe"}}}, LOS_ANGELES) == "Qualification"


def test_json_schema_accepts_examples_and_rejects_typos() -> None:
    # given the exported schema
    schema = mapping_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)

    # expect every example valid
    for path in sorted(EXAMPLES.glob("*.yaml")):
        data = json.loads(json.dumps(yaml.safe_load(path.read_text()), default=str))
        assert list(validator.iter_errors(data)) == [], path.name

    # and a typo'd key and an unknown transform rejected
    data = yaml.safe_load((EXAMPLES / "sales.yaml").read_text())
    data["destinations"][0]["wen"] = {}
    data["destinations"][1]["fields"]["Amount"]["transform"] = ["uper"]
    messages = [e.message for e in validator.iter_errors(data)]
    assert any("'wen' was unexpected" in m for m in messages)
    assert len(messages) == 2
