"""The rules model as a matching judge: two items are one commitment when their titles agree."""

from __future__ import annotations

import re
from typing import Any

from rapidfuzz import fuzz

_ITEM = re.compile(r"<item_(?P<side>[ab])>\n?(?P<body>.*?)</item_(?P=side)>", re.S)
_STOP = re.compile(r"\b(?:the|a|an|to|for|of|on|with|and|by|our|their|your|my)\b")


def _words(text: str) -> str:
    return " ".join(_STOP.sub(" ", re.sub(r"[^\w\s]", " ", text.lower())).split())


def judge(texts: list[str]) -> dict[str, Any]:
    """`same` when the two items' content words mostly agree (order and fillers aside)."""
    items: dict[str, str] = {}
    for text in texts:
        for m in _ITEM.finditer(text):
            items[m["side"]] = m["body"].strip()
    a, b = _words(items.get("a", "")), _words(items.get("b", ""))
    score = fuzz.token_set_ratio(a, b) if a and b else 0.0
    same = score >= 75
    return {"same": same, "reason": f"content words agree at {score:.0f}/100"}
