"""Grounding: quotes located in the transcript, invented ones dropped, owners verified."""

from __future__ import annotations

from extraction.grounding import ground, locate
from extraction.schemas import ActionItem, CrmFields, TextFact
from meetsync.samples import load_sample

MEETING = load_sample("globex_discovery")


def _item(evidence: str, owner: str | None = "Sam Patel", email: str | None = None) -> ActionItem:
    return ActionItem(
        title="Send the SOC 2 report", description=None, owner=owner, owner_email=email,
        due_date="2026-11-20", priority=None, confidence=0.9, evidence=evidence,
    )  # fmt: skip


def _empty_crm(**facts: TextFact) -> CrmFields:
    fields = dict.fromkeys(CrmFields.model_fields)
    return CrmFields(**{**fields, **facts})


def test_exact_quote_is_located_with_offsets() -> None:
    span = locate("I'll send the SOC 2 report by Friday.", MEETING)
    assert span is not None and span.score == 100.0
    text = MEETING.transcript[span.utterance_index].text
    assert text[span.start : span.end] == "I'll send the SOC 2 report by Friday."


def test_slightly_misquoted_evidence_is_located_fuzzily() -> None:
    span = locate("I’ll send the SOC2 report by Friday", MEETING)
    assert span is not None and 90 <= span.score < 100
    assert span.utterance_index == 19


def test_quote_with_speaker_prefix_is_still_found() -> None:
    assert locate("[19] Sam Patel: I'll send the SOC 2 report by Friday.", MEETING) is not None


def test_invented_quote_is_dropped_and_counted() -> None:
    real = _item("I'll send the SOC 2 report by Friday.")
    invented = _item("I'll wire the $2M prepayment to your account tonight.")
    insights = ground([invented, real], None, MEETING)
    assert [i.evidence for i in insights.action_items] == [real.evidence]
    assert insights.dropped_ungrounded == 1
    assert set(insights.evidence) == {"/action_items/0"}


def test_crm_fact_without_a_located_quote_becomes_null() -> None:
    crm = _empty_crm(
        budget=TextFact(value="$150k", evidence="We've got about $150k set aside for this"),
        stage=TextFact(value="Closed Won", evidence="We signed the contract yesterday."),
    )
    insights = ground([], crm, MEETING)
    assert insights.crm is not None and insights.crm.stage is None
    assert insights.crm.budget is not None and "/crm/budget" in insights.evidence
    assert insights.dropped_ungrounded == 1


def test_owner_email_only_ever_comes_from_the_attendee_list() -> None:
    sneaky = _item("I'll send the SOC 2 report by Friday.", owner="Sam", email="x@evil.example")
    stranger = _item("I'll send the SOC 2 report by Friday.", owner="Mallory", email=None)
    insights = ground([sneaky, stranger], None, MEETING)
    assert insights.action_items[0].owner == "Sam Patel"
    assert insights.action_items[0].owner_email == "sam@acme.io"
    # a name nobody said and nobody is: no owner rather than an invented one
    assert insights.action_items[1].owner is None
    assert insights.action_items[1].owner_email is None
