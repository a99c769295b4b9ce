"""What a message may carry: text, blocks and metadata, checked as chat.postMessage does.

Limits are Slack's (text length, block count, section and header text); blocks that break
them are refused as `invalid_blocks` with Slack's per-block messages. Blocks that together
carry more than MAX_BLOCKS_TEXT characters (their text plus BLOCK_OVERHEAD per block, the
"buffer for block containers" Slack staff describe in slackapi/bolt-js#2509) are refused as
`msg_blocks_too_long`, even when every block is within its own limit.
"""

from __future__ import annotations

import json
from typing import Any

from sandbox.slack.errors import _SlackError

MAX_TEXT = 40_000  # chat.postMessage truncates/refuses longer text
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3_000
MAX_HEADER_TEXT = 150
MAX_BLOCKS_TEXT = 12_000
BLOCK_OVERHEAD = 20


def _content(args: dict[str, Any]) -> tuple[str, list[dict[str, Any]] | None, Any]:
    """Validate text, blocks and metadata as chat.postMessage / chat.update do."""
    text = str(args.get("text") or "")
    blocks = _json_arg(args.get("blocks"), "invalid_blocks_format")
    metadata = _json_arg(args.get("metadata"), "invalid_metadata_format")
    if not text and not blocks:
        raise _SlackError("no_text")
    if len(text) > MAX_TEXT:
        raise _SlackError("msg_too_long")
    if blocks is not None:
        problems = _block_problems(blocks)
        if problems:
            raise _SlackError(
                "invalid_blocks",
                errors=problems,
                response_metadata={"messages": [f"[ERROR] {p}" for p in problems]},
            )
        if _text_length(blocks) + BLOCK_OVERHEAD * len(blocks) > MAX_BLOCKS_TEXT:
            raise _SlackError("msg_blocks_too_long")
    if metadata is not None and (
        not isinstance(metadata, dict)
        or not isinstance(metadata.get("event_type"), str)
        or not isinstance(metadata.get("event_payload", {}), dict)
    ):
        raise _SlackError("invalid_metadata_format")
    return text, blocks, metadata


def _json_arg(value: Any, error: str) -> Any:
    if isinstance(value, str) and value:
        try:
            return json.loads(value)
        except ValueError as exc:
            raise _SlackError(error) from exc
    return value or None


def _text_length(value: Any) -> int:
    """Every `text` string under `value`, added up."""
    if isinstance(value, dict):
        return sum(
            len(v) if k == "text" and isinstance(v, str) else _text_length(v)
            for k, v in value.items()
        )
    if isinstance(value, list):
        return sum(_text_length(v) for v in value)
    return 0


def _block_problems(blocks: Any) -> list[str]:
    if not isinstance(blocks, list):
        return ["must be an array [json-pointer:/blocks]"]
    problems = []
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            problems.append(f"missing required field: type [json-pointer:/blocks/{i}]")
            continue
        text = block.get("text")
        body = text.get("text", "") if isinstance(text, dict) else ""
        limit = MAX_HEADER_TEXT if block["type"] == "header" else MAX_SECTION_TEXT
        if block["type"] in {"section", "header"} and len(body) > limit:
            problems.append(
                f"must be less than {limit + 1} characters [json-pointer:/blocks/{i}/text/text]"
            )
        for j, field in enumerate(block.get("fields") or []):
            if isinstance(field, dict) and len(field.get("text", "")) > 2000:
                problems.append(
                    f"must be less than 2001 characters [json-pointer:/blocks/{i}/fields/{j}]"
                )
    return problems
