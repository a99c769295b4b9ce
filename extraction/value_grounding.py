"""Grounded values: each typed value must follow from its own quote, or it is dropped.

A located quote proves the meeting said something, not that the value the model drew from
it is right: "Amount: 1,000,000,000,000" quoting a line about spreadsheets, or a due date
of 2026-02-30. Here every value is checked against its quote once, where it is extracted,
so every destination sees the same cleaned value:

    amount + currency   a normalised amount the quote states, in the currency it says
    dates               a real ISO date that a date expression in the quote can mean,
                        resolved against the meeting's local date
    stage               one of the org's stages (or a known one) that the quote cues
    owner               an attendee, a person in the org profile or in org memory (by
                        name, alias or a close misspelling), who said the quote,
                        answered it or is named in it; otherwise no owner
    names (lists)       short names the transcript says
    text                its numbers and most of its words come from the quote

Each check is a pure function returning the cleaned value or None (dropped).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from rapidfuzz import fuzz

from extraction import spoken_amounts, spoken_dates
from extraction.prompt_echo import words
from extraction.said import says
from extraction.schemas import AmountFact, DateFact, ListFact, TextFact
from meetsync.models import MeetingOutput

KNOWN_STAGES = [
    "Prospecting", "Qualification", "Needs Analysis", "Value Proposition", "Id. Decision Makers",
    "Perception Analysis", "Proposal/Price Quote", "Negotiation/Review", "Closed Won",
    "Closed Lost", "Discovery", "Proposal", "Pricing", "Negotiation", "Contract", "Won", "Lost",
]  # fmt: skip
# What a quote says when it supports a stage: cue words per word of the stage's name.
STAGE_CUES: dict[str, str] = {
    "prospecting": r"prospect|intro|first (?:call|meeting)|reach(?:ed|ing)? out",
    "qualification": r"budget|decision|approv|involved|qualif|pain|evaluat|timeline|need",
    "discovery": r"budget|decision|approv|involved|discover|pain|evaluat|need|learn",
    "needs": r"needs?\b|requirement",
    "value": r"value|roi|business case|savings",
    "decision": r"decision|approv|sign(?:s|ing)? off|final say",
    "perception": r"perception|feedback|impression",
    "proposal": r"proposal|quote|pricing|price",
    "pricing": r"proposal|quote|pricing|price",
    "quote": r"proposal|quote|pricing|price",
    "negotiation": r"redline|negotiat|discount|order form|terms?\b|msa|contract|legal|procurement",
    "review": r"redline|negotiat|review|legal|procurement|terms?\b",
    "contract": r"contract|redline|msa|order form|legal|terms?\b",
    "won": r"\bsign(?:ed|ing)\b|countersign|\bwon\b|purchase order|\bpo\b|closed",
    "lost": r"went with|not moving forward|decided against|\blost\b|\bpass(?:ing)?\b|chose",
}
_SKIP_STAGE_WORDS = {"closed", "id", "analysis"}
MIN_WORD_SHARE = 0.5  # of a text value's content words that its quote must say
MAX_NAME_WORDS = 6
MAX_TITLE_WORDS = 20
REPLY_TURNS = 2  # turns after a quote that may answer it (a date, "sure, I'll do it")
_STOP = {
    "a", "an", "the", "and", "or", "of", "to", "for", "in", "on", "at", "by", "with", "is",
    "are", "be", "was", "we", "our", "you", "your", "their", "they", "it", "this", "that",
    "i", "will", "can", "has", "have", "had", "do", "does", "as", "from", "about", "into",
    "up", "out",
}  # fmt: skip


@dataclass(frozen=True)
class Person:
    """Someone an item may be assigned to."""

    name: str | None
    email: str | None
    aliases: tuple[str, ...] = ()  # spoken names and misspellings org memory knows


@dataclass(frozen=True)
class Facts:
    """What values are checked against, besides their quotes."""

    today: date
    people: tuple[Person, ...]
    stages: tuple[str, ...]
    transcript: tuple[str, ...]
    speakers: tuple[str | None, ...]


def facts_of(meeting: MeetingOutput, profile: dict[str, Any] | None) -> Facts:
    """The meeting's local date, its people (attendees, the org's, then whoever spoke under a
    label no attendee has: a role or a letter), stages and turns."""
    profile = profile or {}
    people = [Person(a.name, (a.email or "").lower() or None) for a in meeting.attendees]
    for entry in profile.get("people") or []:
        if isinstance(entry, dict) and (entry.get("name") or entry.get("email")):
            email = str(entry.get("email") or "").lower() or None
            people.append(Person(entry.get("name"), email))
    people = remembered(people, (profile.get("memory") or {}).get("people") or [])
    known = {n.lower() for p in people for n in (p.name or "", *p.aliases)}
    for label in dict.fromkeys(u.speaker for u in meeting.transcript if u.speaker):
        if label.lower() not in known and "@" not in label:
            people.append(Person(label, None))  # a participant by definition: they spoke
    return Facts(
        today=meeting.start.astimezone(ZoneInfo(meeting.timezone)).date(),
        people=tuple(people),
        stages=tuple(str(s) for s in profile.get("stages") or []),
        transcript=tuple(u.text for u in meeting.transcript),
        speakers=tuple(u.speaker for u in meeting.transcript),
    )


# -- people ----------------------------------------------------------------------------
def find_person(name: str | None, email: str | None, people: Iterable[Person]) -> Person | None:
    """The one person `name` (full, first name, or an email) or `email` points at."""
    people = list(people)
    for wanted in (name, email):
        key = (wanted or "").strip().lower()
        if not key:
            continue
        exact = [p for p in people if key in {(p.name or "").lower(), p.email or ""}]
        if exact:
            return exact[0]
        known = [p for p in people if key in {a.lower() for a in p.aliases}]
        if len({p.name for p in known}) == 1:
            return known[0]
        first = [p for p in people if p.name and p.name.split()[0].lower() == key]
        if len({p.name for p in first}) == 1:
            return first[0]
    return _misspelt(name, [p for p in people if p.aliases])


def remembered(people: list[Person], memory: list[dict[str, Any]]) -> list[Person]:
    """`people` with org memory's people merged in: one person per email, with aliases."""
    out = list(people)
    for entry in memory:
        email = str(entry.get("email") or "").lower() or None
        aliases = tuple(str(a) for a in entry.get("aliases") or [])
        name = entry.get("name")
        same = [
            k
            for k, p in enumerate(out)
            if (email and p.email == email) or (p.name or "").lower() == str(name).lower()
        ]
        if same:
            k = same[0]
            out[k] = Person(name or out[k].name, out[k].email or email, out[k].aliases + aliases)
        else:
            out.append(Person(name, email, aliases))
    return out


def _misspelt(name: str | None, people: list[Person]) -> Person | None:
    """The one remembered person a misspelt name is close to (rapidfuzz ≥ 88), if any."""
    if not name or len(name) < 4:
        return None
    close = {
        p.name: p
        for p in people
        if any(fuzz.ratio(name.lower(), n.lower()) >= 88 for n in (p.name or "", *p.aliases))
    }
    return next(iter(close.values())) if len(close) == 1 else None


def ground_owner(
    name: str | None, email: str | None, utterance: int, quote: str, facts: Facts
) -> Person | None:
    """The owner as a known person who said, answered or is named in the quote; else None."""
    person = find_person(name, email, facts.people)
    if person is None or (not person.name and not person.email):
        return None
    near = facts.speakers[utterance : utterance + REPLY_TURNS + 1]  # who said it, who answered
    if any(find_person(s, None, [person]) for s in near if s):
        return person
    full = person.name or ""
    names = {n for n in (full, *full.split()[:1], *person.aliases) if n}
    return person if any(says(quote, n) for n in names) else None


# -- typed values ----------------------------------------------------------------------
def ground_date(
    value: str | None, quote: str, facts: Facts, utterance: int | None = None
) -> str | None:
    """`value` when it is a real ISO date the quote (or the answer to it) can mean, else None.

    A request ("Mindy, could you send me the export?") often gets its date in the reply
    ("Sure, tomorrow"), so with `utterance` the next two turns count as the quote's too.
    """
    when = spoken_dates.parse_iso(value)
    if when is None:
        return None
    texts = [quote]
    if utterance is not None:
        texts += list(facts.transcript[utterance : utterance + REPLY_TURNS + 1])
    if not any(spoken_dates.supports(when, text, facts.today) for text in texts):
        return None
    return when.isoformat()


def ground_amount(fact: AmountFact) -> AmountFact | None:
    """The amount when its quote states it (normalised) in its currency, else None."""
    currency = (fact.currency or "").strip().upper() or None
    if currency is not None and not re.fullmatch(r"[A-Z]{3}", currency):
        return None
    if not math.isfinite(fact.value) or fact.value < 0:
        return None
    if not spoken_amounts.supports(fact.value, currency, fact.evidence):
        return None
    return fact.model_copy(update={"currency": currency})


def allowed_stage(value: str, facts: Facts) -> str | None:
    """The picklist spelling of `value` among the org's stages (or known ones), or None."""
    wanted = _fold(value)
    for stage in facts.stages or KNOWN_STAGES:
        if _fold(stage) == wanted:
            return stage
    if facts.stages and any(_fold(s) == wanted for s in KNOWN_STAGES):
        return value.strip()  # a common synonym the mapping's map may turn into the org's
    return None


def ground_stage(fact: TextFact, facts: Facts) -> TextFact | None:
    """The stage when it is a picklist value and its quote cues it, else None."""
    stage = allowed_stage(fact.value, facts)
    if stage is None:
        return None
    quote = fact.evidence
    if says(quote, stage):
        return fact.model_copy(update={"value": stage})
    for word in words(stage):
        if word in _SKIP_STAGE_WORDS:
            continue
        cue = STAGE_CUES.get(word)
        if (cue and re.search(cue, quote, re.IGNORECASE)) or (
            not cue and len(word) > 3 and says(quote, word)
        ):
            return fact.model_copy(update={"value": stage})
    return None


def supports_title(title: str, quote: str, utterance: int, facts: Facts) -> bool:
    """Whether an item's title says what its quote (or the reply to it) says, briefly.

    A title asked for in under 12 words that runs past MAX_TITLE_WORDS is a pasted line,
    not a task.
    """
    if len(title.split()) > MAX_TITLE_WORDS:
        return False
    turns = (quote, *facts.transcript[utterance : utterance + REPLY_TURNS + 1])
    return supports_text(title, " ".join(turns))


def supports_text(value: str, quote: str) -> bool:
    """Whether a short text value comes from `quote`: its numbers, and most of its words."""
    said = set(_stems(quote))
    numbers = re.findall(r"\d[\d,.]*", value)
    if any(n.rstrip(".,").replace(",", "") not in quote.replace(",", "") for n in numbers):
        return False
    content = [w for w in _stems(value) if w not in _STOP]
    if not content:
        return False
    return sum(w in said for w in content) / len(content) >= MIN_WORD_SHARE


def ground_text(name: str, fact: TextFact, facts: Facts) -> TextFact | None:
    """The text fact when its quote supports it; next steps may gather several turns."""
    if supports_text(fact.value, fact.evidence):
        return fact
    if name != "next_steps":
        return None
    parts = [p for p in re.split(r"[;\n]+", fact.value) if p.strip()]
    turns = (fact.evidence, *facts.transcript)
    if len(parts) > 1 and all(any(supports_text(p, t) for t in turns) for p in parts):
        return fact
    return None


def ground_list(name: str, fact: ListFact, facts: Facts) -> tuple[ListFact | None, int]:
    """The list with only supported values, and how many were dropped.

    One quote stands for the whole list, so each value must come from that quote or from
    another turn of the transcript; names (competitors, decision makers) must also be short.
    """
    kept: list[str] = []
    for value in fact.values:
        if _list_value_ok(name, value, fact.evidence, facts):
            kept.append(value)
    dropped = len(fact.values) - len(kept)
    return (fact.model_copy(update={"values": kept}) if kept else None), dropped


def _list_value_ok(name: str, value: str, quote: str, facts: Facts) -> bool:
    if name in {"competitors", "decision_makers"}:
        head = value.split("(")[0].strip()
        if not head or len(head.split()) > MAX_NAME_WORDS:
            return False
        if name == "competitors":
            return any(says(t, head) for t in (quote, *facts.transcript))
        known = find_person(head, None, facts.people) is not None
        return known or any(says(t, head) for t in (quote, *facts.transcript))
    return any(supports_text(value, text) for text in (quote, *facts.transcript))


def ground_date_fact(fact: DateFact, facts: Facts) -> DateFact | None:
    value = ground_date(fact.value, fact.evidence, facts)
    return None if value is None else fact.model_copy(update={"value": value})


def _stems(text: str) -> list[str]:
    # a crude stem: "spreadsheets" and "spreadsheet", "exports" and "exporting" meet
    return [w[:6] for w in words(text)]


def _fold(text: str) -> str:
    return " ".join(words(text))
