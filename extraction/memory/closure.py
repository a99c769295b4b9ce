"""Closures: a meeting that says an earlier commitment is done ("I sent the proposal")
proposes closing that commitment instead of creating a new task.

Only the open commitments recalled into the prompt are candidates. A closure needs an
utterance that reports the work as done (a past-tense completion, not "I still need to"),
and the commitment's object words in that utterance or the question it answers ("Did the
proposal go out?" "Yes, sent it Monday"), remembered terms' misspellings read right. Each
commitment closes at most once, at its best utterance; the quote is the evidence, as for
every other item.
"""

from __future__ import annotations

import re
from typing import Any

from extraction.memory.search import words_of
from extraction.said import whole_words
from extraction.schemas import Closure
from meetsync.models import MeetingOutput

DONE = re.compile(
    r"\b(?:sent|shared|emailed|mailed|finished|completed|submitted|delivered|signed|uploaded"
    r"|booked|scheduled|filed|wrapped up|went out|got (?:it|that|them) (?:done|out|over)"
    r"|set up|created|prepared|drafted|wrote|ran|fixed|updated|closed|reviewed|sorted out"
    r"|took care of|handled|done|did (?:it|that))\b",
    re.IGNORECASE,
)
NOT_DONE = re.compile(
    r"(?:n't\b|'ll\b|\?\s*$)|\b(?:not|never|yet to|still (?:need|have|got)|will|going to|gonna"
    r"|plan to|need to|have to|should|could|would|can you|did you)\b",
    re.IGNORECASE,
)
MIN_SHARE = 0.5
_VERBS = {
    "send", "share", "email", "mail", "finish", "complete", "submit", "deliver", "sign",
    "upload", "book", "schedule", "file", "prepare", "draft", "write", "follow", "get", "set",
    "make", "put", "loop", "review", "update", "create",
}  # fmt: skip


def find_closures(meeting: MeetingOutput, profile: dict[str, Any] | None) -> list[Closure]:
    """The recalled open commitments this meeting reports as done, each with its quote."""
    memory = (profile or {}).get("memory") or {}
    commitments = memory.get("commitments") or []
    terms = memory.get("terms") or []
    texts = [u.text for u in meeting.transcript]
    best: dict[str, tuple[float, Closure]] = {}
    for index, text in enumerate(texts):
        for sentence in re.split(r"(?<=[.!?])\s+", text):
            if not DONE.search(sentence) or NOT_DONE.search(sentence):
                continue
            context = spelled(" ".join([*texts[max(0, index - 1) : index], sentence]), terms)
            for commitment in commitments:
                share = _share(commitment["title"], context)
                if share < MIN_SHARE:
                    continue
                ref = commitment["id"]
                if ref not in best or share > best[ref][0]:
                    closure = Closure(
                        commitment=ref,
                        title=commitment["title"],
                        evidence=sentence.strip(),
                        utterance_index=index,
                    )
                    best[ref] = (share, closure)
    return [closure for _, closure in sorted(best.values(), key=lambda v: v[1].utterance_index)]


def spelled(text: str, terms: list[dict[str, Any]]) -> str:
    """`text` with remembered terms' misspellings ("sock two") written right ("SOC 2")."""
    for term in terms:
        name = str(term["name"])
        for alias in sorted(term.get("aliases") or [], key=len, reverse=True):
            text = whole_words(alias).sub(name.replace("\\", "\\\\"), text)
    return text


def _share(title: str, context: str) -> float:
    """How many of the title's object words (its verb left out) the context says."""
    objects = [w[:5] for w in words_of([title]) if w not in _VERBS and len(w) > 2]
    if not objects:
        return 0.0
    heard = {w[:5] for w in words_of([context])}
    return sum(w in heard for w in objects) / len(objects)
