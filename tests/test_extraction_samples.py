"""Each bundled meeting through the real openai SDK and the sandbox rules model."""

from __future__ import annotations

import pytest
from rapidfuzz import fuzz

from extraction.extract import extract_insights
from extraction.schemas import Insights
from meetsync.samples import load_sample
from meetsync.settings import LLMSettings
from sandbox.server import Sandbox

# (title, owner email, due date) per sample: every commitment in it, and nothing else
EXPECTED: dict[str, list[tuple[str, str | None, str | None]]] = {
    "globex_discovery": [
        ("Send the SOC 2 report", "sam@acme.io", "2026-11-20"),
        ("Set up a sandbox with their sample data", "sam@acme.io", "2026-11-24"),
        ("Send Sam a sample export from the warehouse tool", "mindy@globex.com", "2026-11-18"),
        ("Put together an implementation plan with milestones", "dana@acme.io", None),
        ("Include a benchmark at that volume in the sandbox", "sam@acme.io", None),
        ("Put a formal quote together", "dana@acme.io", None),
        ("Pull together the seat counts by department", "mindy@globex.com", "2026-11-20"),
        ("Loop in Raj from IT security", "hank@globex.com", None),
        ("Send a recap email", "dana@acme.io", "2026-11-17"),
    ],
    "initech_renewal": [
        ("Send Dana the redlines on the MSA", "bill@initech.com", "2026-12-04"),
        ("Loop in legal", "bill@initech.com", "2026-11-20"),
        ("Open a priority ticket with support engineering", "priya@acme.io", "2026-11-19"),
        ("Share the ticket number with Peter", "priya@acme.io", None),
        ("Update the order form to 100 seats", "dana@acme.io", "2026-11-23"),
        (
            "Send Priya the exact error messages from the Okta logs",
            "peter@initech.com",
            "2026-11-19",
        ),
        ("Check with finance on an upfront payment discount", "dana@acme.io", None),
        ("Schedule two training sessions", "priya@acme.io", None),
    ],
    "sprint_planning": [
        ("Finish pagination and retries", "marco@acme.io", "2026-11-19"),
        ("Write integration tests against the mock SAP server", "marco@acme.io", None),
        ("Give Sam admin on staging", "lee@acme.io", "2026-11-16"),
        ("Fix the timezone bug in the export", "marco@acme.io", None),
        ("Look into the Okta group sync issue", "marco@acme.io", "2026-11-17"),
        ("Update the setup guide", "sam@acme.io", "2026-11-20"),
        ("Ask design for the new onboarding mockups", "lee@acme.io", None),
        ("Update the sprint board with today's estimates", "marco@acme.io", None),
    ],
    "umbrella_escalation": [
        # 16:30 in Los Angeles is already Saturday in UTC: "tomorrow" is still the 21st
        ("Deploy the fix", "lee@acme.io", "2026-11-21"),
        ("Monitor the refresh jobs through the weekend", "lee@acme.io", None),
        ("Send Alice a written root cause analysis", "priya@acme.io", "2026-11-25"),
        ("Backfill the missing refreshes", "lee@acme.io", None),
        ("Get Alice a number on the SLA credit for November", "priya@acme.io", "2026-11-27"),
        ("Set up a staleness alert on the refresh jobs", "lee@acme.io", "2026-11-24"),
        ("Text Alice my cell number", "priya@acme.io", "2026-11-20"),
        ("Share a migration guide for the v2 data model", "lee@acme.io", "2026-12-01"),
    ],
    "initech_qbr": [
        ("Send Bill a written proposal for the ops expansion", "dana@acme.io", "2026-10-23"),
        ("Share which warehouse tables the ops team needs", "peter@initech.com", None),
        ("Run a two-hour onboarding workshop for the new analysts", "priya@acme.io", "2026-11-06"),
        ("Send Priya the list of names", "peter@initech.com", None),
    ],
}
SMALL_TALK = {
    "globex_discovery": [
        "I'll take raking over soccer bleachers any day.",
        "You have to get the brisket.",
    ],
    "initech_renewal": [
        "I'll be honest, that's a ten percent jump",
        "we'll keep an eye out for the order form",
    ],
    "sprint_planning": [
        "I'll need restaurant recommendations at some point.",
        "Let's put it in the backlog",
    ],
    "umbrella_escalation": [
        "I'll be blunt, this week has been bad for us.",
        "if this happens again we'll have to look at other vendors",
    ],
    "initech_qbr": ["I'll keep an eye on it", "We'll need it."],
}


@pytest.fixture(scope="module")
def extracted(sandbox: Sandbox) -> dict[str, Insights]:
    settings = LLMSettings(base_url=sandbox.urls["openai"])
    return {
        name: extract_insights(load_sample(name), settings=settings).insights for name in EXPECTED
    }


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in EXPECTED])
def test_sample_yields_its_commitments_with_owners_and_due_dates(
    extracted: dict[str, Insights], name: str
) -> None:
    # given a bundled meeting, when extracted, expect exactly its commitments
    items = extracted[name].action_items
    got = [(i.title, i.owner_email, i.due_date) for i in items]
    for title, email, due in EXPECTED[name]:
        match = [g for g in got if fuzz.token_set_ratio(g[0].lower(), title.lower()) >= 80]
        assert match, f"missing {title!r} in {got}"
        assert (match[0][1], match[0][2]) == (email, due), f"{title!r}: {match[0]}"
    assert len(items) == len(EXPECTED[name]), got


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in SMALL_TALK])
def test_small_talk_never_becomes_an_item(extracted: dict[str, Insights], name: str) -> None:
    quotes = [item.evidence for item in extracted[name].action_items]
    for chatter in SMALL_TALK[name]:
        assert not any(chatter in quote for quote in quotes)


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in EXPECTED])
def test_every_item_is_grounded_with_a_span(extracted: dict[str, Insights], name: str) -> None:
    meeting = load_sample(name)
    insights = extracted[name]
    assert insights.dropped_ungrounded == 0
    for k, item in enumerate(insights.action_items):
        span = insights.evidence[f"/action_items/{k}"]
        utterance = meeting.transcript[span.utterance_index].text
        assert utterance[span.start : span.end] == item.evidence


def test_sales_call_fills_deal_fields(extracted: dict[str, Insights]) -> None:
    crm = extracted["globex_discovery"].crm
    assert crm is not None and crm.competitors is not None and crm.close_date is not None
    assert crm.competitors.values == ["Tableau", "Power BI"]
    assert crm.close_date.value == "2027-02-28"
    assert crm.budget is not None and "$150k" in crm.budget.value
    assert crm.amount is None  # a budget is not a deal amount
    assert crm.next_steps is not None and "technical deep dive" in crm.next_steps.value


def test_renewal_takes_the_last_agreed_amount_stage_and_close_date(
    extracted: dict[str, Insights],
) -> None:
    crm = extracted["initech_renewal"].crm
    assert crm is not None and crm.amount is not None
    assert (crm.amount.value, crm.amount.currency) == (120000.0, "USD")
    assert crm.stage is not None and crm.stage.value == "Negotiation/Review"
    assert crm.close_date is not None and crm.close_date.value == "2026-12-18"
    assert crm.competitors is not None and crm.competitors.values == ["Looker"]
    assert crm.decision_makers is not None
    assert "Michael Bolton (CIO)" in crm.decision_makers.values


def test_euro_amount_keeps_its_currency(extracted: dict[str, Insights]) -> None:
    crm = extracted["initech_qbr"].crm
    assert crm is not None and crm.amount is not None
    assert (crm.amount.value, crm.amount.currency) == (50000.0, "EUR")


def test_internal_meeting_has_no_deal_fields(extracted: dict[str, Insights]) -> None:
    crm = extracted["sprint_planning"].crm
    assert crm is not None
    assert all(getattr(crm, field) is None for field in type(crm).model_fields)
