"""A call's arguments as Slack reads them: query, form or JSON merged; flags, ints, cursors.

Malformed bodies and cursors raise the `_SlackError` Slack answers with (`invalid_json`,
`invalid_form_data`, `invalid_cursor`); cursors are opaque base64 of a position.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from sandbox.slack.errors import _SlackError


async def _arguments(request: Request) -> dict[str, Any]:
    """Query parameters, then the form or JSON body, the way Slack merges them."""
    args: dict[str, Any] = dict(request.query_params)
    kind = request.headers.get("content-type", "")
    if request.method == "POST":
        if kind.startswith("application/json"):
            body = await request.body()
            if body:
                try:
                    parsed = json.loads(body)
                except ValueError as exc:
                    raise _SlackError("invalid_json") from exc
                if not isinstance(parsed, dict):
                    raise _SlackError("json_not_object")
                args.update(parsed)
        elif kind.startswith("application/x-www-form-urlencoded"):
            # Parsed here: Starlette's form parser needs python-multipart, which is overkill.
            args.update(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        elif kind.startswith("multipart/form-data"):
            try:
                form = await request.form()
            except AssertionError as exc:  # python-multipart is not installed
                raise _SlackError("invalid_form_data") from exc
            args.update({k: v for k, v in form.items() if isinstance(v, str)})
    return args


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() in {"1", "true"}


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _encode_cursor(position: str) -> str:
    return base64.b64encode(f"next:{position}".encode()).decode()


def _decode_cursor(cursor: Any) -> str:
    if not cursor:
        return ""
    try:
        kind, _, position = base64.b64decode(str(cursor)).decode().partition(":")
    except ValueError as exc:
        raise _SlackError("invalid_cursor") from exc
    if kind != "next" or not position:
        raise _SlackError("invalid_cursor")
    return position
