"""Grounding: every item's quote must be found in the transcript, or the item goes.

A quote is located exactly first, then fuzzily (rapidfuzz partial ratio) to forgive a
model's small slips (curly quotes, a dropped comma). Items whose quote can't be located
are dropped and counted. Owners are grounded too: only attendees or names spoken in the
meeting, and emails only from the attendee list, so a transcript can't redirect work.
"""

from __future__ import annotations

import re

from rapidfuzz import fuzz, process

from extraction.schemas import ActionItem, CrmFields, EvidenceSpan, Insights
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


def _spoken(name: str, meeting: MeetingOutput) -> bool:
    pattern = re.compile(rf"\b{re.escape(name.strip())}\b", re.IGNORECASE)
    return any(
        pattern.search(u.text) or (u.speaker and pattern.search(u.speaker))
        for u in meeting.transcript
    )


def ground_owner(item: ActionItem, meeting: MeetingOutput) -> ActionItem:
    """Owner as an attendee (with their email), or a spoken name, or nobody."""
    emails = {(a.email or "").lower(): a for a in meeting.attendees if a.email}
    owner, email = item.owner, None
    if owner:
        person = meeting.attendee_by_name(owner) or emails.get(owner.strip().lower())
        if person is not None:
            owner, email = person.name or owner, person.email
        elif not _spoken(owner, meeting):
            owner = None
    if owner is None and item.owner_email and item.owner_email.lower() in emails:
        person = emails[item.owner_email.lower()]
        owner, email = person.name, person.email
    return item.model_copy(update={"owner": owner, "owner_email": email})


def ground(items: list[ActionItem], crm: CrmFields | None, meeting: MeetingOutput) -> Insights:
    """Insights with only located items and facts, each with its EvidenceSpan."""
    evidence: dict[str, EvidenceSpan] = {}
    kept: list[ActionItem] = []
    dropped = 0
    for item in items:
        span = locate(item.evidence, meeting)
        if span is None:
            dropped += 1
            continue
        quote = meeting.transcript[span.utterance_index].text[span.start : span.end]
        evidence[f"/action_items/{len(kept)}"] = span
        kept.append(ground_owner(item, meeting).model_copy(update={"evidence": quote}))
    grounded_crm: CrmFields | None = None
    if crm is not None:
        fields: dict[str, object] = {}
        for name in CrmFields.model_fields:
            fact = getattr(crm, name)
            if fact is None:
                fields[name] = None
                continue
            span = locate(fact.evidence, meeting)
            if span is None:
                dropped += 1
                fields[name] = None
                continue
            quote = meeting.transcript[span.utterance_index].text[span.start : span.end]
            evidence[f"/crm/{name}"] = span
            fields[name] = fact.model_copy(update={"evidence": quote})
        grounded_crm = CrmFields.model_validate(fields)
    return Insights(
        action_items=kept, crm=grounded_crm, evidence=evidence, dropped_ungrounded=dropped
    )
