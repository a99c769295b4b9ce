"""Org memory at extraction time: recall per meeting, rendering into the prompt, closures.

The profile a meeting's extraction sees is the org's stored profile plus, under `memory`,
the entries recalled for that meeting (`meeting_profile`); the extraction cache key
hashes that profile, so it holds only what was recalled and rendered.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from extraction.memory.recall import DEFAULT_BUDGET_TOKENS, MEMORY_KEY, Recall, recall
from meetsync.models import MeetingOutput

__all__ = ["DEFAULT_BUDGET_TOKENS", "MEMORY_KEY", "Recall", "meeting_profile", "recall"]


def meeting_profile(
    session: Session,
    org_id: str,
    profile: dict[str, Any] | None,
    meeting: MeetingOutput,
    budget_tokens: int = DEFAULT_BUDGET_TOKENS,
    semantic: bool = False,
) -> dict[str, Any]:
    """The org's profile with what its memory recalls for `meeting` under `memory`."""
    return recall(session, org_id, meeting, budget_tokens, semantic).profile(profile)
