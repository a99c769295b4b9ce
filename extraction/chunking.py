"""Long transcripts in pieces: token-counted chunks at utterance boundaries, merged back.

Chunks overlap by a few utterances so a request and its answer ("Can you …?" — "Sure")
land together; items found twice in the overlap are folded by owner and title similarity.
"""

from __future__ import annotations

import logging
from typing import Any

from rapidfuzz import fuzz

from extraction.models import capabilities
from extraction.schemas import ActionItem, CrmFields
from meetsync.models import Utterance
from meetsync.tokens import count_tokens

log = logging.getLogger(__name__)

Numbered = list[tuple[int, Utterance]]
SAME_TITLE = 85.0
SAME_TASK_SAME_DUE = 55.0


def context_window(model: str, overrides: dict[str, int] | None = None) -> int:
    """The model's context window in tokens (settings override the built-in table)."""
    return capabilities(model, overrides).context_window


def plan_chunks(utterances: Numbered, budget: int, overlap: int = 2) -> list[Numbered]:
    """Consecutive runs of utterances each under `budget` tokens, overlapping by `overlap`."""
    if not utterances:
        return []
    costs = [count_tokens(f"[{i}] {u.speaker or ''}: {u.text}") + 1 for i, u in utterances]
    chunks: list[Numbered] = []
    start = 0
    while start < len(utterances):
        end, used = start, 0
        while end < len(utterances) and (used + costs[end] <= budget or end == start):
            used += costs[end]
            end += 1
        chunks.append(utterances[start:end])
        if end >= len(utterances):
            break
        start = max(start + 1, end - overlap)
    return chunks


def halves(chunk: Numbered) -> list[Numbered]:
    """The chunk split in two at an utterance boundary (one piece if it can't split)."""
    if len(chunk) < 2:
        return [chunk]
    middle = len(chunk) // 2
    return [chunk[:middle], chunk[middle:]]


def merge_items(batches: list[list[ActionItem]]) -> list[ActionItem]:
    """Items from every chunk, duplicates folded (same owner, same meaning or quote)."""
    kept: list[ActionItem] = []
    for batch in batches:
        for item in batch:
            twin = next((k for k, other in enumerate(kept) if _same(other, item)), None)
            if twin is None:
                kept.append(item)
                continue
            other = kept[twin]
            kept[twin] = other.model_copy(
                update={
                    "owner": other.owner or item.owner,
                    "owner_email": other.owner_email or item.owner_email,
                    "due_date": other.due_date or item.due_date,
                    "priority": other.priority or item.priority,
                    "description": other.description or item.description,
                    "confidence": max(other.confidence, item.confidence),
                }
            )
    return kept


def _same(a: ActionItem, b: ActionItem) -> bool:
    if a.evidence.strip() == b.evidence.strip() and a.title.lower() == b.title.lower():
        return True
    owners_agree = a.owner is None or b.owner is None or a.owner.lower() == b.owner.lower()
    if not owners_agree:
        return False
    similarity = fuzz.token_set_ratio(a.title.lower(), b.title.lower())
    # a chunk that saw only half of an exchange words the same task differently
    same_due = a.due_date is not None and a.due_date == b.due_date
    return similarity >= SAME_TITLE or (same_due and similarity >= SAME_TASK_SAME_DUE)


_LATEST = {"stage", "amount", "close_date", "next_steps"}


def merge_crm(parts: list[CrmFields]) -> CrmFields | None:
    """One CrmFields from chunks: lists unioned, the latest stated deal terms win."""
    if not parts:
        return None
    merged: dict[str, Any] = {}
    for name in CrmFields.model_fields:
        facts = [getattr(p, name) for p in parts if getattr(p, name) is not None]
        if not facts:
            merged[name] = None
        elif hasattr(facts[0], "values"):
            values: list[str] = []
            for fact in facts:
                values += [v for v in fact.values if v not in values]
            merged[name] = facts[0].model_copy(update={"values": values})
        else:
            merged[name] = facts[-1] if name in _LATEST else facts[0]
    return CrmFields(**merged)
