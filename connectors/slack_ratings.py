"""👍/👎 on a recap and on each of its action items: one actions block at the recap's end.

Buttons rate the recap; the select rates one item (`👍 <title>` or `👎 <title>`). Each
value is `<recap op key>|<item index or "">|up|down`, so the interaction endpoint finds the
meeting, the item and the model that produced it without a payload of ours in Slack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

RATE_UP, RATE_DOWN, RATE_ITEM = "review:rate:up", "review:rate:down", "review:rate:item"
BLOCK_ID = "meetsync:rating"
MAX_ITEMS = 50  # a select holds 100 options: a 👍 and a 👎 per item


def rating_block(op_key: str, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The recap's rating controls."""
    elements: list[dict[str, Any]] = [
        _button("👍 Useful", RATE_UP, f"{op_key}||up"),
        _button("👎 Not useful", RATE_DOWN, f"{op_key}||down"),
    ]
    options = [
        {
            "text": {"type": "plain_text", "text": _cut(f"{mark} {item.get('title') or '?'}", 75)},
            "value": f"{op_key}|{i}|{verdict}",
        }
        for i, item in enumerate(items[:MAX_ITEMS])
        for mark, verdict in (("👍", "up"), ("👎", "down"))
    ]
    if options:
        elements.append(
            {
                "type": "static_select",
                "action_id": RATE_ITEM,
                "placeholder": {"type": "plain_text", "text": "Rate an action item"},
                "options": options,
            }
        )
    return {"type": "actions", "block_id": BLOCK_ID, "elements": elements}


def _button(text: str, action_id: str, value: str) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": text, "emoji": True},
        "action_id": action_id,
        "value": value,
    }


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
