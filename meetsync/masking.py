"""Credentials masked wherever they sit in text: URL userinfo and secret-named query values.

`mask_text` is for anything shown (config, logs, tracebacks, API answers);
`mask_secrets` walks plain data (dicts, lists) and masks every string in it.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "**********"

# scheme://user:password@host → the password; scheme://token@host → the token
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<userinfo>[^/@\s?#]+)@")
# ?password=…, &api_key=…, ;token=… (query strings and DSN-style pairs)
_SECRET_PARAM = re.compile(
    r"(?P<key>(?:^|(?<=[?&;\s]))[\w.\-]*(?:pass(?:word|wd)?|pwd|secret|token|api[_\-]?key|"
    r"apikey|access[_\-]?key|credential|signature|sig)[\w.\-]*)=(?P<value>[^&;\s#\"']+)",
    re.IGNORECASE,
)


def mask_text(text: str) -> str:
    """`text` with URL passwords (or bare URL tokens) and secret-named parameters masked."""

    def userinfo(match: re.Match[str]) -> str:
        user, sep, _ = match["userinfo"].partition(":")
        return f"{match['scheme']}{user}:{MASK}@" if sep else f"{match['scheme']}{MASK}@"

    text = _USERINFO.sub(userinfo, text)
    return _SECRET_PARAM.sub(lambda m: f"{m['key']}={MASK}", text)


def mask_secrets(data: Any) -> Any:
    """A copy of plain data with every string passed through `mask_text`."""
    if isinstance(data, str):
        return mask_text(data)
    if isinstance(data, dict):
        return {key: mask_secrets(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [mask_secrets(value) for value in data]
    return data
