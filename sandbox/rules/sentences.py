"""Sentence spans of an utterance, kept verbatim so quotes match the transcript."""

from __future__ import annotations

import re
from dataclasses import dataclass

_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z0-9\"'(\[¿¡])")


@dataclass(frozen=True)
class Sentence:
    text: str
    start: int

    @property
    def is_question(self) -> bool:
        return self.text.rstrip().endswith("?")


def split_sentences(text: str) -> list[Sentence]:
    """Sentences of `text` with their offsets; text is never rewritten."""
    out: list[Sentence] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        chunk = text[start : m.start() + len(m.group(0).rstrip())].strip()
        if chunk:
            out.append(Sentence(chunk, text.index(chunk, start)))
        start = m.end()
    tail = text[start:].strip()
    if tail:
        out.append(Sentence(tail, text.index(tail, start)))
    return out
