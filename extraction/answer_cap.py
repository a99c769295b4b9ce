"""What the LLM client reads of one answer: no more than its token limit allows.

A model (or a gateway in front of it) that ignores max_completion_tokens can answer with
a body of any size; the SDK would read all of it into memory. A response hook checks the
declared length and wraps the body so reading stops at the cap with `AnswerTooLarge`,
which the caller treats like a length error.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import openai

# a token is rarely more than a few bytes, but JSON escapes (\uXXXX) and long whitespace
# tokens can stretch it; the envelope (ids, usage, headers' worth of JSON) adds a little
BYTES_PER_TOKEN = 64
ENVELOPE_BYTES = 64 * 1024


class AnswerTooLarge(Exception):
    """The answer's body is larger than its token limit allows: read no further."""

    def __init__(self, cap: int) -> None:
        super().__init__(f"answer body exceeds {cap} bytes")
        self.cap = cap


def answer_byte_cap(max_output_tokens: int) -> int:
    """The most bytes an answer of `max_output_tokens` may take on the wire."""
    return max_output_tokens * BYTES_PER_TOKEN + ENVELOPE_BYTES


# the httpx the SDK ships with (httpx2 in openai 3.x): its responses want its stream types
sdk_http: Any = importlib.import_module(openai.DefaultHttpxClient.__mro__[1].__module__)


class _CappedStream(sdk_http.SyncByteStream):  # type: ignore[misc]
    """A response body that raises `AnswerTooLarge` once it passes `cap` bytes."""

    def __init__(self, inner: Any, cap: int) -> None:
        self.inner, self.cap = inner, cap

    def __iter__(self) -> Iterator[bytes]:
        size = 0
        for chunk in self.inner:
            size += len(chunk)
            if size > self.cap:
                raise AnswerTooLarge(self.cap)
            yield chunk

    def close(self) -> None:
        self.inner.close()


def capping(cap: int) -> Any:
    """An httpx response hook that stops reading a body past `cap` bytes."""

    def hook(response: Any) -> None:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise AnswerTooLarge(cap)
        response.stream = _CappedStream(response.stream, cap)

    return hook
