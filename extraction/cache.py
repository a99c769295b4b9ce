"""The extraction cache key: same transcript, models, prompts and profile → same insights."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from meetsync.db.models import InsightRecord
from meetsync.hashing import stable_hash
from meetsync.settings import LLMSettings


def extraction_key(llm: LLMSettings, transcript_hash: str, profile: dict[str, Any]) -> str:
    """The key an extraction is stored under; a redelivery or backfill with it calls no LLM."""
    parts: list[Any] = [transcript_hash, llm.models, llm.prompt_versions, profile]
    if any(llm.params.values()):  # keys made before arms had parameters stay valid
        parts.append(llm.params)
    return stable_hash(parts)


def stored_insights(session: Session, meeting_id: str, key: str | None) -> InsightRecord | None:
    """The insights of a meeting's stored revision: those under `key` (a transcript edited
    back to an earlier version hits the cache, so its record is not the newest), else the
    newest; None when the meeting was never extracted."""
    query = select(InsightRecord).where(InsightRecord.meeting_id == meeting_id)
    if key is not None:
        query = query.order_by((InsightRecord.cache_key == key).desc())
    return session.scalars(query.order_by(InsightRecord.id.desc()).limit(1)).first()
