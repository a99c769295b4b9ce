"""The LLM client's read cap: a body past the cap is never read, declared or streamed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from extraction.answer_cap import AnswerTooLarge, answer_byte_cap, capping, sdk_http

CAP = 1_000


def _client(handler: Any) -> Any:
    return openai.DefaultHttpxClient(
        transport=sdk_http.MockTransport(handler), event_hooks={"response": [capping(CAP)]}
    )


def test_a_declared_length_over_the_cap_is_refused_before_reading() -> None:
    def handler(request: Any) -> Any:
        return sdk_http.Response(200, content=b"x" * (CAP + 1))

    with _client(handler) as client, pytest.raises(AnswerTooLarge):
        client.get("http://llm.test/")


def test_a_streamed_body_stops_being_read_at_the_cap() -> None:
    sent: list[int] = []

    def endless() -> Iterator[bytes]:
        for _ in range(10_000):
            sent.append(100)
            yield b"x" * 100

    def handler(request: Any) -> Any:
        return sdk_http.Response(200, content=endless())

    with _client(handler) as client, pytest.raises(AnswerTooLarge):
        client.get("http://llm.test/")
    assert sum(sent) <= CAP + 100  # one chunk past the cap, never the rest


def test_an_answer_within_the_cap_reads_whole() -> None:
    def handler(request: Any) -> Any:
        return sdk_http.Response(200, content=b"x" * CAP)

    with _client(handler) as client:
        assert len(client.get("http://llm.test/").content) == CAP


def test_the_cap_follows_the_token_limit() -> None:
    assert answer_byte_cap(4_096) < 400_000 < 82 * 1024 * 1024
    assert answer_byte_cap(8_192) > answer_byte_cap(4_096)
