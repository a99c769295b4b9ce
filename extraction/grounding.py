"""Grounding: every item's quote must be found in the transcript, or the item goes.

A quote is located exactly first, then fuzzily (rapidfuzz partial ratio) to forgive a
model's small slips (curly quotes, a dropped comma). Items whose quote can't be located
are dropped and counted (`dropped_ungrounded`). Then each value must follow from its own
quote (extraction/value_grounding.py): owners only from the attendees or the org's people,
real dates the quote can mean, amounts the quote states; a value that fails is dropped and
counted (`dropped_values`). Items and facts that quote our own prompt rather than the
meeting, or whose quote talks to the model ("ignore your instructions"), go too
(`dropped_prompt_echo`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

from rapidfuzz import fuzz, process

from extraction.prompt_echo import (
    Instructions,
    addresses_the_model,
    echoes,
    normalised_transcript,
)
from extraction.schemas import (
    ActionItem,
    AmountFact,
    CrmFields,
    DateFact,
    EvidenceSpan,
    Insights,
    ListFact,
)
from extraction.value_grounding import (
    Facts,
    facts_of,
    ground_amount,
    ground_date,
    ground_date_fact,
    ground_list,
    ground_owner,
    ground_stage,
    ground_text,
    supports_title,
)
from meetsync.models import MeetingOutput

MIN_FUZZY_SCORE = 90.0
_PREFIX = re.compile(r"^\s*(?:\[\d+\]\s*)?(?:[^:\n]{1,60}:\s+)?")
_QUOTES = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "–": "-", "—": "-"})


def locate(quote: str, meeting: MeetingOutput) -> EvidenceSpan | None:
    """Where `quote` sits in the transcript (utterance index, char offsets), or None."""
    texts = [u.text for u in meeting.transcript]
    candidates = [quote.strip().strip('"'), _PREFIX.sub("", quote.strip(), count=1).strip('"')]
    for candidate in candidates:
        if len(candidate) < 3:
            continue
        for index, text in enumerate(texts):
            start = text.find(candidate)
            if start >= 0:
                return EvidenceSpan(
                    utterance_index=index, start=start, end=start + len(candidate), score=100.0
                )
    needle = candidates[-1].translate(_QUOTES)
    if len(needle) < 8 or not texts:
        return None
    normalised = [t.translate(_QUOTES) for t in texts]
    best = process.extractOne(
        needle, normalised, scorer=fuzz.partial_ratio, score_cutoff=MIN_FUZZY_SCORE
    )
    if best is None:
        return None
    _, _, index = best
    alignment = fuzz.partial_ratio_alignment(needle, normalised[index])
    if alignment is None or alignment.score < MIN_FUZZY_SCORE:
        return None
    return EvidenceSpan(
        utterance_index=index,
        start=alignment.dest_start,
        end=alignment.dest_end,
        score=round(alignment.score, 1),
    )


def ground(
    items: list[ActionItem],
    crm: CrmFields | None,
    meeting: MeetingOutput,
    profile: dict[str, Any] | None = None,
    prompt: Instructions | None = None,
) -> Insights:
    """Insights with only located items and facts, each value checked against its quote."""
    facts = facts_of(meeting, profile)
    transcript = normalised_transcript(list(facts.transcript))
    evidence: dict[str, EvidenceSpan] = {}
    kept: list[ActionItem] = []
    dropped, echoed = 0, 0
    values: Counter[str] = Counter()

    def echo(text: str | None) -> bool:
        return prompt is not None and echoes(text, prompt, transcript)

    for item in items:
        span = locate(item.evidence, meeting)
        if span is None:
            dropped += 1
            continue
        if echo(item.title) or addresses_the_model(item.evidence):
            echoed += 1
            continue
        quote = meeting.transcript[span.utterance_index].text[span.start : span.end]
        if not supports_title(item.title, quote, span.utterance_index, facts):
            values["action_items.title"] += 1
            continue
        item, lost = _ground_item(item, quote, span.utterance_index, facts)
        if echo(item.description) or addresses_the_model(item.description):
            item, lost = item.model_copy(update={"description": None}), [*lost, "description"]
            echoed += 1
        values.update(f"action_items.{name}" for name in lost)
        evidence[f"/action_items/{len(kept)}"] = span
        kept.append(item)
    grounded_crm: CrmFields | None = None
    if crm is not None:
        fields: dict[str, object] = {}
        for name in CrmFields.model_fields:
            fact = getattr(crm, name)
            fields[name] = None
            if fact is None:
                continue
            span = locate(fact.evidence, meeting)
            if span is None:
                dropped += 1
                continue
            quote = meeting.transcript[span.utterance_index].text[span.start : span.end]
            if any(echo(v) for v in _texts(fact)) or addresses_the_model(quote):
                echoed += 1
                continue
            checked, misses = _ground_fact(name, fact.model_copy(update={"evidence": quote}), facts)
            if misses:
                values[f"crm.{name}"] += misses
            if checked is not None:
                evidence[f"/crm/{name}"] = span
                fields[name] = checked
        grounded_crm = CrmFields.model_validate(fields)
    return Insights(
        action_items=kept,
        crm=grounded_crm,
        evidence=evidence,
        dropped_ungrounded=dropped,
        dropped_values=dict(values),
        dropped_prompt_echo=echoed,
    )


def _ground_item(
    item: ActionItem, quote: str, utterance: int, facts: Facts
) -> tuple[ActionItem, list[str]]:
    """The item with its quote, owner, due date and confidence checked; what was dropped."""
    lost: list[str] = []
    person = ground_owner(item.owner, item.owner_email, utterance, quote, facts)
    if person is None and (item.owner or item.owner_email):
        lost.append("owner")
    due = ground_date(item.due_date, quote, facts, utterance) if item.due_date else None
    if item.due_date and due is None:
        lost.append("due_date")
    confidence = item.confidence
    if not (math.isfinite(confidence) and 0.0 <= confidence <= 1.0):
        confidence = 0.0  # never trust a confidence that breaks its own scale
        lost.append("confidence")
    update = {
        "evidence": quote,
        "owner": person.name or person.email if person else None,
        "owner_email": person.email if person else None,
        "due_date": due,
        "confidence": confidence,
    }
    return item.model_copy(update=update), lost


def _ground_fact(name: str, fact: Any, facts: Facts) -> tuple[Any, int]:
    """The fact with its value checked against its quote (None when it fails); drops."""
    checked: Any
    if isinstance(fact, ListFact):
        return ground_list(name, fact, facts)
    if isinstance(fact, AmountFact):
        checked = ground_amount(fact)
    elif isinstance(fact, DateFact):
        checked = ground_date_fact(fact, facts)
    elif name == "stage":
        checked = ground_stage(fact, facts)
    else:
        checked = ground_text(name, fact, facts)
    return checked, 0 if checked is not None else 1


def _texts(fact: Any) -> list[str]:
    if isinstance(fact, ListFact):
        return list(fact.values)
    return [fact.value] if isinstance(fact.value, str) else []
