"""Whether a text says a phrase: as whole words, in any case.

Grounding asks it of a quote, evaluation of a title, and recall of a meeting: recall asks
it of every name and alias the lexical search found (hundreds in an org that
synced its CRM's contacts) and of every account its open commitments name. One regex scan
of the whole transcript per phrase made that cost names × transcript length: ~150 ms of
CPU per meeting at 4,000 people. A phrase's words are looked up in the text's word set
first, so the regex runs only for the few phrases whose every word the meeting says.
"""

from __future__ import annotations

import re
from functools import lru_cache

_WORD = re.compile(r"\w+")


class Said:
    """A meeting's text, with the set of its (casefolded) words."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.words = frozenset(_WORD.findall(text.casefold()))

    def says(self, phrase: str) -> bool:
        """Whether the text holds `phrase` case-insensitively, not inside a longer word."""
        words = _words(phrase)
        if words and not self.words.issuperset(words):
            return False  # a word it never says: no need to scan
        return says(self.text, phrase)


def says(text: str, phrase: str) -> bool:
    """Whether `text` holds `phrase` case-insensitively, not inside a longer word."""
    return whole_words(phrase).search(text) is not None


@lru_cache(maxsize=8192)
def _words(phrase: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(phrase.casefold()))


@lru_cache(maxsize=8192)
def whole_words(phrase: str) -> re.Pattern[str]:
    """`phrase` as a case-insensitive pattern that matches it only as whole words."""
    # an org's names recur meeting after meeting: compiled once each (re's own cache
    # holds 512 patterns, fewer than one meeting's names in a large org)
    return re.compile(rf"(?<!\w){re.escape(phrase)}(?!\w)", re.IGNORECASE)
