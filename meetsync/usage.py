"""LLM spend per org, from the token usage stored with every extraction."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from meetsync.db.models import InsightRecord, Meeting


def spend_by_org(session: Session, prices: dict[str, tuple[float, float]]) -> list[dict[str, Any]]:
    """Calls, tokens and USD per org and model; unpriced models count tokens at $0."""
    totals: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"calls": 0, "input_tokens": 0, "output_tokens": 0, "usd": 0.0}
    )
    rows = session.execute(
        select(Meeting.org_id, InsightRecord.usage).join(
            InsightRecord, InsightRecord.meeting_id == Meeting.id
        )
    )
    for org_id, usage in rows:
        for call in usage or []:
            model = call.get("model", "?")
            entry = totals[(org_id, model)]
            price_in, price_out = prices.get(model, (0.0, 0.0))
            tokens_in, tokens_out = (
                int(call.get("input_tokens", 0)),
                int(call.get("output_tokens", 0)),
            )
            entry["calls"] += 1
            entry["input_tokens"] += tokens_in
            entry["output_tokens"] += tokens_out
            entry["usd"] += (tokens_in * price_in + tokens_out * price_out) / 1_000_000
    return [
        {"org_id": org, "model": model, **entry, "usd": round(entry["usd"], 6)}
        for (org, model), entry in sorted(totals.items())
    ]
