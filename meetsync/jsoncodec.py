"""JSON for the database's JSON columns, through orjson.

Every push reads its ops' JSON columns (target, fields, item, receipt: ~20 values a batch)
and extraction reads a meeting's payload with its transcript; the standard library's
`json` spent several times orjson's CPU on them. What orjson refuses (an integer beyond 64
bits) goes through `json`, so nothing that stored before fails to store now.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

# keys that are not strings (an int) become strings, as `json.dumps` makes them
_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> str:
    """`value` as JSON text (UTF-8 kept as is: the columns are text, not ASCII)."""
    try:
        return orjson.dumps(value, option=_OPTIONS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value)


def loads(text: str | bytes | bytearray | memoryview) -> Any:
    """The value of a JSON text."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(bytes(text) if isinstance(text, memoryview) else text)
