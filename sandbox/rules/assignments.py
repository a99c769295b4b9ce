"""Work handed out rather than promised: a chair's assignments, roles, group tasks.

Shapes, each after the speech is tidied (sandbox/rules/disfluency.py):

- second person: "<Name or role>, you'll be working on the design", "you're gonna be doing
  the evaluation", owned by the person named, else by whoever acknowledges next;
- a bare noun phrase handed to someone: "And for you, the product evaluation",
  "Marketing, the user requirements";
- a wish addressed to someone: "I'd like to receive the components concept by next
  meeting, Industrial Designer";
- a role as the subject: "the two designers need to work together on the prototype";
- a group task: "we need to send the questionnaire", owned by whoever takes it up in the
  next few turns ("I can do that", "C, can you take that?" "Sure"), else by nobody.

Owners are names, or speaker labels ("B", "Project Manager") when that is all there is.
"""

from __future__ import annotations

import re

from sandbox.rules.disfluency import tidy
from sandbox.rules.prompt_view import Line, MeetingView

SECOND = re.compile(
    r"^(?:so\s+|and\s+|then\s+)?(?:you'll|you will|you're gonna|you're going to|you are going to"
    r"|you'd|you are)\s+(?:(?:also|then|now)\s+)?(?:be\s+)?(?P<pred>.+)$",
    re.IGNORECASE,
)
FOR_YOU = re.compile(
    r"^(?:and\s+|so\s+|then\s+)?(?:for|to) you,?\s+(?:(?P<name>[A-Z][a-z]+(?: [A-Z][a-z]+)?"
    r"|[A-Z]{1,5}),\s+)?(?P<np>(?:the|a|an|your|some)\s.+)$",
    re.IGNORECASE,
)
NOUN_PHRASE = re.compile(r"^(?P<np>(?:the|a|an|your)\s+(?!one\b|rest\b|other\b)\w.+)$", re.I)
WISH = re.compile(
    r"^(?:i'd like to|i would like to|i want to|i'd love to|i need to|we'd like to|we need to)"
    r"\s+(?:receive|get|see|have)\s+(?P<np>(?:the|a|an|your|some)\s.+?)"
    r"(?:\s+from (?:you|you guys|you two|your side))?$",
    re.IGNORECASE,
)
GROUP = re.compile(
    r"^(?:we need to|we have to|we should|we've got to|we gotta|we must|someone needs to"
    r"|somebody needs to|someone should|somebody should|someone has to|somebody has to)"
    r"\s+(?P<pred>.+)$",
    re.IGNORECASE,
)
ROLE_SUBJECT = re.compile(
    r"^(?:the\s+)?(?:(?:two|both|three)\s+)?(?P<role>[a-z][a-z ]{1,40}?)\s+(?:need to|needs to"
    r"|will|should|have to|has to|are going to|is going to|are gonna|is gonna)\s+(?P<pred>.+)$",
    re.IGNORECASE,
)
TAKE_UP = re.compile(
    r"\b(?:i can|i'll|i will|let me|i'm happy to|happy to)\s+(?:(?:also|just)\s+)?(?:do|take"
    r"|handle|own|draft|grab|write|pick)\s+(?:that|it|this|that one|it on|care of (?:that|it))\b"
    r"|\b(?:leave it with me|on it|i've got (?:it|that)|i got (?:it|that)|that's me|mine)\b",
    re.IGNORECASE,
)
HAND_OVER = re.compile(
    r"^(?P<name>[A-Z][\w ]{0,30}?),?\s+(?:can|could|would) you\s+(?:take|do|handle|own|grab)"
    r"\s+(?:that|it|this)\b",
)
ACK = re.compile(
    r"^(?:ok(?:ay)?|sure|yes|yeah|yep|yup|right|will do|fine|got it|alright|all right"
    r"|no problem|of course|absolutely|sounds good|that's doable|doable|understood|i can|i'll"
    r"|i will|we'll|we will|we can|definitely|certainly|perfect|great)\b",
    re.IGNORECASE,
)
SHORT_ACK = re.compile(r"\b(?:yeah|yes|okay|ok|sure|fine|will do|doable)\b", re.IGNORECASE)
DECLINE = re.compile(
    r"^(?:no\b(?! problem)|nope|i can't|i cannot|we can't|not (?:really|sure|me)|unfortunately"
    r"|i won't|probably not|i thought you)",
    re.IGNORECASE,
)
_LEADS = re.compile(r"^(?:(?:oh|okay|ok|so|and|um|well|right|great|yeah)[,.!]?\s+)+", re.I)
_IRREGULAR = {"doing": "do", "going": "go", "being": "be", "having": "have", "seeing": "see"}


def base_verb(predicate: str, known: frozenset[str]) -> str:
    """'doing the evaluation' → 'do the evaluation'; anything else unchanged."""
    head, _, rest = predicate.partition(" ")
    lowered = head.lower()
    if not lowered.endswith("ing") or len(lowered) < 5:
        return predicate
    stem = lowered[:-3]
    verb = _IRREGULAR.get(lowered)
    if verb is None:
        candidates = [stem, stem + "e"]
        if len(stem) > 2 and stem[-1] == stem[-2]:
            candidates.insert(0, stem[:-1])
        verb = next((c for c in candidates if c in known), None)
        if verb is None:
            silent_e = re.search(r"[^aeiou][aeiou][kvtcgzr]$", stem)
            verb = stem + "e" if silent_e else stem
    return f"{verb} {rest}".strip()


def speaker_labels(view: MeetingView) -> list[str]:
    """Every distinct speaker label, in order of first appearance."""
    seen: list[str] = []
    for line in view.lines:
        if line.speaker and line.speaker not in seen:
            seen.append(line.speaker)
    return seen


def role_owner(view: MeetingView, phrase: str) -> str | None:
    """The speaker label or attendee a role phrase ('the two designers') points at."""
    words = [w for w in re.findall(r"[a-z]+", phrase.lower()) if w not in {"the", "two", "both"}]
    if not words or len(words) > 3:
        return None
    singular = [w[:-1] if w.endswith("s") and len(w) > 3 else w for w in words]
    labels = speaker_labels(view) + [p.name for p in view.attendees if p.name]
    for label in labels:
        lowered = label.lower()
        if lowered == " ".join(words) or lowered == " ".join(singular):
            return label
    if len(singular) == 1:
        for label in labels:
            if re.search(rf"\b{re.escape(singular[0])}", label.lower()):
                return label
    return None


def acknowledger(lines: list[Line], pos: int, speaker: str | None) -> str | None:
    """Who acknowledges a hand-out in the next turn, if anyone does."""
    for other in lines[pos + 1 : pos + 2]:
        if other.speaker and other.speaker != speaker:
            text = tidy(other.text)
            if DECLINE.match(text):
                return None
            if ACK.match(text) or (len(text.split()) <= 6 and SHORT_ACK.search(text)):
                return other.speaker
    return None


def taker(view: MeetingView, pos: int, proposer: str | None) -> tuple[str | None, int | None]:
    """Who takes up a group task within the next three turns, and on which line."""
    lines = view.lines
    for k in range(pos + 1, min(len(lines), pos + 4)):
        line = lines[k]
        text = tidy(line.text)
        sentences = [_LEADS.sub("", part) for part in re.split(r"(?<=[.!?])\s+", text)]
        handed = next(filter(None, (HAND_OVER.match(part) for part in sentences)), None)
        if handed and k + 1 < len(lines):
            name = handed["name"].strip()
            reply = lines[k + 1]
            if (
                reply.speaker
                and reply.speaker.lower() == name.lower()
                and ACK.match(tidy(reply.text))
            ):
                return reply.speaker, reply.index
        if TAKE_UP.search(text) and not DECLINE.match(text):
            return line.speaker, line.index
    return None, None
