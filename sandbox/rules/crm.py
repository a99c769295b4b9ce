"""Deal facts in a transcript: amount, stage, close date, competitors, budget and the rest.

Each fact carries the verbatim sentence it came from. Meetings with no external attendee
are internal: they describe no deal, so every field stays null.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from sandbox.rules.commitments import find_commitments
from sandbox.rules.dates import find_date
from sandbox.rules.prompt_view import Line, MeetingView
from sandbox.rules.sentences import split_sentences

KNOWN_COMPETITORS = [
    "Tableau", "Power BI", "Looker", "Domo", "Qlik", "Sisense", "ThoughtSpot", "Metabase",
    "Mode Analytics", "Sigma Computing", "MicroStrategy", "Amplitude", "Mixpanel", "Periscope",
    "Chartio", "Superset", "Redash", "Alteryx", "Microsoft Fabric", "Grafana", "Hex",
]  # fmt: skip
DEFAULT_STAGES = [
    "Prospecting", "Qualification", "Needs Analysis", "Value Proposition", "Id. Decision Makers",
    "Perception Analysis", "Proposal/Price Quote", "Negotiation/Review", "Closed Won",
    "Closed Lost",
]  # fmt: skip

_MONEY = re.compile(
    r"(?P<cur>[$€£])\s?(?P<num>\d[\d,]*(?:\.\d+)?)\s?(?P<mult>k|m|mm|million|thousand|grand)?\b"
    r"|(?P<num2>\d[\d,]*(?:\.\d+)?)\s?(?P<mult2>k|m|million|thousand|grand)?\s+"
    r"(?P<word>dollars|usd|euros?|eur|pounds|gbp)\b",
    re.IGNORECASE,
)
_THRESHOLD = re.compile(
    r"\b(?:over|above|under|below|more than|less than|up to|exceeds?)\s*$", re.I
)
_DEAL_WORDS = re.compile(
    r"\b(?:price|pricing|proposal|quote|renewal|contract|deal|per year|a year|annually|annual"
    r"|/year|per month|total|list|cost|term|come in at|land at|hold|acv|arr|subscription)\b",
    re.IGNORECASE,
)
_COMPETITOR_CUE = re.compile(
    r"\b(?:also (?:looking at|evaluating|talking to|considering)|evaluating|comparing (?:you )?"
    r"(?:with|to|against)|a quote from|quoted by|switch(?:ing)? (?:to|from)|currently (?:use|using)"
    r"|went with|going with)\s+(?P<name>[A-Z][\w.]*(?:\s[A-Z][\w.]*)?)"
)
_CLOSE_WORDS = re.compile(
    r"\b(?:sign|signed|signature|close|closing|ink|paperwork|countersign)", re.I
)
_TIMELINE_WORDS = re.compile(
    r"\b(?:go live|go-live|live by|live before|launch|roll ?out|up and running|deadline"
    r"|implementation|fiscal year|kick ?off|cutover)",
    re.IGNORECASE,
)
_WHEN = re.compile(
    r"\b(?:january|february|march|april|may|june|july|august|september|october|november"
    r"|december|q[1-4]|quarter|fiscal year|next year|this year|weeks?|months?|days?)\b",
    re.IGNORECASE,
)
_PAIN_WORDS = re.compile(
    r"\b(?:mess|pain|struggl\w*|frustrat\w*|manual(?:ly)?|by hand|spreadsheets?|stale|slow"
    r"|broken|keeps? (?:dropping|breaking|failing)|lose access|takes? (?:forever|hours|days)"
    r"|hours a week|can't get|bottleneck|outdated|annoying|bad for us|burned)\b",
    re.IGNORECASE,
)
_RISK_WORDS = re.compile(
    r"\b(?:risk|concern\w*|worried|worry|blocker|won't sign|other vendors|churn|cancel"
    r"|burned before|dragged|delay\w*|slip\w*|hard sell|careful|freeze|lose (?:your|the) "
    r"(?:trust|deal))\b",
    re.IGNORECASE,
)
_ROLE = (
    r"(?:CFO|CEO|CIO|CTO|COO|CISO|CRO|VP of [A-Z]\w+|VP [A-Z]\w+|head of [a-z]+|director of \w+)"
)
_DM_NAMED = [
    re.compile(
        r"(?P<name>[A-Z][a-z]+ [A-Z][a-z]+), (?:[Oo]ur|[Tt]he|[Tt]heir) (?P<role>" + _ROLE + r")"
    ),
    re.compile(
        r"(?:[Oo]ur|[Tt]he|[Tt]heir) (?P<role>" + _ROLE + r"), (?P<name>[A-Z][a-z]+ [A-Z][a-z]+)"
    ),
]
_DM_CUE = re.compile(
    r"\b(?:final say|make the call|makes the call|sign(?:s)? off|signs anything|decision maker"
    r"|has to approve|needs to approve|approved by|final decision|won't sign)\b",
    re.IGNORECASE,
)
_STAGE_HINTS: list[tuple[str, re.Pattern[str]]] = [
    (
        "Closed Won",
        re.compile(
            r"\b(?:we(?:'ve| have) signed|it's signed|contract is signed"
            r"|countersigned|we're signing today)\b",
            re.I,
        ),
    ),
    (
        "Closed Lost",
        re.compile(
            r"\b(?:went with|not moving forward|decided against"
            r"|decided to go with)\b",
            re.I,
        ),
    ),
    (
        "Negotiation/Review",
        re.compile(
            r"\b(?:redlines?|negotiat\w*|discount|order form"
            r"|term language|msa|contract terms)\b",
            re.I,
        ),
    ),
    (
        "Proposal/Price Quote",
        re.compile(
            r"\b(?:(?:proposal|quote) (?:we|you) sent"
            r"|sent (?:you|over) (?:the|a|our) (?:proposal|quote)"
            r"|got (?:the|your) (?:proposal|quote))\b",
            re.I,
        ),
    ),
    ("Qualification", re.compile(r"\b(?:budget|decision|who else would be involved)\b", re.I)),
]


@dataclass(frozen=True)
class Found:
    sentence: str
    line: Line


def _sentences(view: MeetingView, *, external_only: bool = False) -> list[Found]:
    out: list[Found] = []
    for line in view.lines:
        person = view.person(line.speaker)
        if external_only and person is not None and person.internal:
            continue
        out += [Found(s.text, line) for s in split_sentences(line.text)]
    return out


def _money(text: str) -> list[tuple[float, str | None, int]]:
    found: list[tuple[float, str | None, int]] = []
    for m in _MONEY.finditer(text):
        if _THRESHOLD.search(text[: m.start()]):
            continue
        raw = (m["num"] or m["num2"]).replace(",", "")
        mult = (m["mult"] or m["mult2"] or "").lower()
        value = float(raw) * {
            "k": 1e3,
            "thousand": 1e3,
            "grand": 1e3,
            "m": 1e6,
            "mm": 1e6,
            "million": 1e6,
        }.get(mult, 1.0)
        symbol = (m["cur"] or m["word"] or "").lower()
        currency = {
            "$": "USD",
            "dollars": "USD",
            "usd": "USD",
            "€": "EUR",
            "euro": "EUR",
            "euros": "EUR",
            "eur": "EUR",
            "£": "GBP",
            "pounds": "GBP",
            "gbp": "GBP",
        }.get(symbol)
        if value >= 100:
            found.append((value, currency, m.start()))
    return found


def _clause(sentence: str, limit: int = 160) -> str:
    text = sentence.strip().rstrip(".!")
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def find_crm(view: MeetingView) -> dict[str, Any]:
    """CRM facts as plain data in the CrmFields shape; null where the transcript is silent."""
    empty: dict[str, Any] = {
        key: None
        for key in (
            "next_steps",
            "stage",
            "amount",
            "close_date",
            "competitors",
            "pain_points",
            "decision_makers",
            "budget",
            "timeline",
            "risks",
        )
    }
    if not view.lines or (view.attendees and not view.has_external):
        return empty
    statements = [f for f in _sentences(view) if not f.sentence.rstrip().endswith("?")]
    facts = dict(empty)
    facts["amount"] = _amount(statements)
    facts["budget"] = _budget(view, statements)
    facts["competitors"] = _competitors(view, _sentences(view))
    facts["close_date"] = _close_date(view.day, statements)
    dated = [f for f in statements if _WHEN.search(f.sentence)]
    facts["timeline"] = _first_text(view, dated, _TIMELINE_WORDS, external=True)
    facts["pain_points"] = _listed(view, statements, _PAIN_WORDS, external=True)
    facts["risks"] = _listed(view, statements, _RISK_WORDS, external=False)
    facts["decision_makers"] = _decision_makers(view, statements)
    facts["stage"] = _stage(view, statements)
    facts["next_steps"] = _next_steps(view, statements)
    return facts


def _amount(statements: list[Found]) -> dict[str, Any] | None:
    best: dict[str, Any] | None = None
    for found in statements:
        if "budget" in found.sentence.lower() or not _DEAL_WORDS.search(found.sentence):
            continue
        money = _money(found.sentence)
        if money:
            value, currency, _ = money[-1]
            best = {"value": value, "currency": currency, "evidence": found.sentence}
    return best


def _budget(view: MeetingView, statements: list[Found]) -> dict[str, Any] | None:
    candidates = [f for f in statements if re.search(r"\bbudget", f.sentence, re.I)]
    with_money = [f for f in candidates if _money(f.sentence)]
    external = [
        f for f in candidates
        if (person := view.person(f.line.speaker)) is None or not person.internal
    ]  # fmt: skip
    pool = with_money or external
    if not pool:
        return None
    chosen = pool[0]
    return {"value": _clause(chosen.sentence), "evidence": chosen.sentence}


def _competitors(view: MeetingView, sentences: list[Found]) -> dict[str, Any] | None:
    known = KNOWN_COMPETITORS + view.profile_list("competitors")
    ours = {view.profile.get("company", "").lower(), "acme"}
    people = {(p.name or "").split(" ")[0] for p in view.attendees}
    names: list[str] = []
    evidence: str | None = None
    for found in sentences:
        hits = [n for n in known if re.search(rf"\b{re.escape(n)}\b", found.sentence)]
        for m in _COMPETITOR_CUE.finditer(found.sentence):
            name = m["name"].rstrip(".")
            if name.split(" ")[0] not in people and name.lower() not in ours and len(name) > 2:
                hits.append(name)
        fresh = [h for h in dict.fromkeys(hits) if h not in names]
        if fresh:
            names += fresh
            evidence = evidence or found.sentence
    if not names or evidence is None:
        return None
    return {"values": names, "evidence": evidence}


def _close_date(day: date | None, statements: list[Found]) -> dict[str, Any] | None:
    if day is None:
        return None
    best: dict[str, Any] | None = None
    for found in statements:
        m = _CLOSE_WORDS.search(found.sentence)
        if not m:
            continue
        when = find_date(found.sentence[m.start() :], day)
        if when is not None and when.value >= day:
            best = {"value": when.value.isoformat(), "evidence": found.sentence}
    return best


def _first_text(
    view: MeetingView, statements: list[Found], pattern: re.Pattern[str], *, external: bool
) -> dict[str, Any] | None:
    for found in statements:
        person = view.person(found.line.speaker)
        if external and person is not None and person.internal:
            continue
        if pattern.search(found.sentence):
            return {"value": _clause(found.sentence), "evidence": found.sentence}
    return None


def _listed(
    view: MeetingView, statements: list[Found], pattern: re.Pattern[str], *, external: bool
) -> dict[str, Any] | None:
    values: list[str] = []
    evidence: str | None = None
    for found in statements:
        person = view.person(found.line.speaker)
        if external and person is not None and person.internal:
            continue
        if pattern.search(found.sentence) and len(found.sentence.split()) >= 5:
            values.append(_clause(found.sentence, 120))
            evidence = evidence or found.sentence
        if len(values) == 3:
            break
    if not values or evidence is None:
        return None
    return {"values": values, "evidence": evidence}


def _decision_makers(view: MeetingView, statements: list[Found]) -> dict[str, Any] | None:
    quotes: dict[str, str] = {}
    for found in statements:
        named = [m for pattern in _DM_NAMED for m in pattern.finditer(found.sentence)]
        cue = _DM_CUE.search(found.sentence)
        if not named and not cue:
            continue
        hits = [f"{m['name']} ({m['role']})" for m in named]
        if cue and re.search(r"\bI (?:make|have|sign)", found.sentence):
            hits.insert(0, found.line.speaker or "")
        if cue and not named:
            role = re.search(r"\b(?:our|the) (" + _ROLE + r")\b", found.sentence)
            if role:
                hits.append(role.group(1))
        for hit in hits:
            if hit:
                quotes.setdefault(hit, found.sentence)
    # a bare role ("CFO") is redundant once someone was named with it
    values = [v for v in quotes if not any(f"({v})" in other for other in quotes)]
    if not values:
        return None
    return {"values": values, "evidence": quotes[values[0]]}


def _stage(view: MeetingView, statements: list[Found]) -> dict[str, Any] | None:
    allowed = view.profile_list("stages") or DEFAULT_STAGES
    for stage, pattern in _STAGE_HINTS:
        for found in statements:
            if not pattern.search(found.sentence):
                continue
            match = next((s for s in allowed if s.lower() == stage.lower()), None)
            if match is not None:
                return {"value": match, "evidence": found.sentence}
    return None


def _next_steps(view: MeetingView, statements: list[Found]) -> dict[str, Any] | None:
    for found in statements:
        m = re.search(
            r"\bnext steps? (?:is|are|will be|would be)?:?\s*(?P<what>.+)", found.sentence, re.I
        )
        if m:
            what = m["what"].rstrip(".!")
            return {"value": what[:1].upper() + what[1:], "evidence": found.sentence}
    items = find_commitments(view)
    if not items:
        return None
    return {"value": "; ".join(item.title for item in items[:3]), "evidence": items[0].evidence}
