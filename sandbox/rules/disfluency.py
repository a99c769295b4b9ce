"""Real speech, tidied for reading: fillers, repetitions, false starts and cut-off words.

The commitment rules read the tidied text; quotes (evidence) stay verbatim, taken from the
transcript as spoken. "Um I I'll put the the minutes, uh, in the folder" reads as "I'll
put the minutes in the folder"; "Try I'll try to fix it" as "I'll try to fix it".
"""

from __future__ import annotations

import re
from functools import lru_cache

_FILLER = re.compile(
    r"\b(?:u+m+|u+h+m*|e+r+m*|h+m+|m+h+m+|mm+|mm-hmm|uh-huh|ah)\b[,.]?(?=\s|$)",
    re.IGNORECASE,
)
# "you know" / "I mean" / "like" as fillers: between commas or opening a clause, never in
# "let you know", "I mean it", "like the old one"
_SOFT_FILLER = re.compile(
    r"(?:^|(?<=[,.;]\s)|(?<=\band\s)|(?<=\bso\s)|(?<=\bbut\s))(?:you know|i mean|like"
    r"|basically|actually|kind of|sort of)(?:,\s*|\s+(?=(?:i|we|the)\b))",
    re.IGNORECASE,
)
_COMMA_FILLER = re.compile(r",\s*(?:you know|like|i mean|basically)\s*,", re.IGNORECASE)
# transcriber markup: {disfmarker} {vocalsound} {gap}, [laughter] [inaudible], (laughs)
_ANNOTATION = re.compile(
    r"\{[a-z_ ]{1,30}\}|\[(?:laugh|noise|inaudible|crosstalk|pause|unclear|silence|cough|music"
    r"|overlap|indiscernible)[^\]]{0,30}\]|\((?:laughs?|laughter|inaudible|crosstalk|pause"
    r"|coughs?|unclear)\)",
    re.IGNORECASE,
)
_CUT_WORD = re.compile(r"(?<![\w-])\w{1,8}-(?=\s|$)")
_CUT_DASH = re.compile(r"\s+[-–—]+\s+")
_MODAL = (
    r"(?:i'll|i will|i'm going to|i'm gonna|i am going to|we'll|we will|we're gonna"
    r"|we're going to|let me|i can|we can|i'd|i would|you'll|you're gonna|i need to|i have to"
    r"|i want to|i should|we need to|we should)"
)
# "I'm gonna, I'll write" / "we'll, we're gonna": the first start is abandoned
_RESTART = re.compile(rf"\b{_MODAL}(?:\s+just)?,?\s+(?={_MODAL}\s)", re.IGNORECASE)
# "Try I'll try", "Give I will give": a verb, then the modal and the same verb again
_VERB_RESTART = re.compile(rf"\b(?P<verb>\w+),?\s+(?P<modal>{_MODAL})\s+(?P=verb)\b", re.IGNORECASE)
_REPEAT = re.compile(
    r"\b(?P<chunk>[\w']+(?:\s+[\w']+){0,3})(?:[\s,.]+(?P=chunk)\b)+", re.IGNORECASE
)


@lru_cache(maxsize=16384)  # the rules read each line many times (the lines before a reply)
def tidy(text: str) -> str:
    """The utterance with fillers, repeats, restarts and fragments taken out."""
    out = _ANNOTATION.sub(" ", text)
    out = _COMMA_FILLER.sub(",", out)
    out = _FILLER.sub(" ", out)
    out = _CUT_WORD.sub(" ", out)
    out = _CUT_DASH.sub(" ", out)
    for _ in range(3):
        before = out
        out = _REPEAT.sub(lambda m: m["chunk"], out)
        out = _VERB_RESTART.sub(lambda m: f"{m['modal']} {m['verb'].lower()}", out)
        out = _RESTART.sub("", out)
        out = _SOFT_FILLER.sub("", out)
        if out == before:
            break
    out = re.sub(r"\s+([,.!?;:])", r"\1", out)
    out = re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", out)
    out = re.sub(r"^[\s,.;:]+", "", out)
    out = re.sub(r"\b(and|or|but|so|to|the|a)\s*,\s*", r"\1 ", out, flags=re.IGNORECASE)
    out = re.sub(r"\s{2,}", " ", out).strip()
    return out[:1].upper() + out[1:] if out else out
