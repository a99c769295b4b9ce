"""OpenAI-compatible endpoints that are not OpenAI, through the real SDK and the emulator.

Each compatibility mode of the emulator (sandbox/openai_compat.py) stands for a kind of
server (vLLM, Ollama, llama.cpp, gateways); extraction must give the same items through
every one, learn or be told what the endpoint takes, and count tokens when it won't.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from extraction import compat
from extraction.errors import LLMInvalidOutput, LLMRequestRejected
from extraction.extract import extract_insights
from extraction.llm import InputTooLong, call_structured, make_client
from extraction.schemas import ActionItems
from meetsync.models import Utterance
from meetsync.samples import load_sample
from meetsync.settings import LLMSettings
from sandbox.server import Sandbox


def _emulator(mode: str | dict[str, Any], **extra: Any) -> Iterator[Sandbox]:
    with Sandbox(only=["openai"], options={"openai": {"compat": mode, **extra}}) as running:
        compat.forget(running.urls["openai"])
        yield running
        compat.forget(running.urls["openai"])


@pytest.fixture(scope="module")
def reference(sandbox: Sandbox) -> list[tuple[str, str | None]]:
    """What the plain OpenAI-shaped emulator extracts from the sample."""
    compat.forget(sandbox.urls["openai"])
    result = extract_insights(
        load_sample("initech_renewal"), settings=LLMSettings(base_url=sandbox.urls["openai"])
    )
    return [(i.title, i.owner_email) for i in result.insights.action_items]


@pytest.mark.parametrize(
    ("mode", "learnt", "formats", "estimated"),
    [
        pytest.param("openai", "json_schema", {"json_schema"}, False, id="openai"),
        pytest.param("no_strict", "json_object", {"json_object"}, False, id="no-strict-vllm"),
        pytest.param(
            "json_object_only", "json_object", {"json_object"}, True, id="json-object-ollama"
        ),
        pytest.param("prompt_only", "prompt", {"text"}, True, id="no-response-format-gateway"),
        pytest.param("no_usage", "json_schema", {"json_schema"}, True, id="no-usage"),
    ],
)
def test_every_mode_gives_the_same_items(
    mode: str,
    learnt: str,
    formats: set[str],
    estimated: bool,
    reference: list[tuple[str, str | None]],
) -> None:
    for running in _emulator(mode):
        # given an endpoint left on "auto", when a meeting is extracted
        settings = LLMSettings(base_url=running.urls["openai"])
        result = extract_insights(load_sample("initech_renewal"), settings=settings)
        # expect the same items, the mode it learnt from the first 400, and honest usage
        assert [(i.title, i.owner_email) for i in result.insights.action_items] == reference
        assert compat.mode_for(running.urls["openai"]) == learnt
        served = running.providers["openai"].snapshot()["requests"]
        assert {r["response_format"] for r in served} == formats
        assert all(u.estimated is estimated for u in result.usage)
        assert all(u.input_tokens > 0 and u.output_tokens > 0 for u in result.usage)


def test_a_configured_endpoint_never_tries_json_schema() -> None:
    for running in _emulator("json_object_only"):
        settings = LLMSettings(base_url=running.urls["openai"], structured_output="json_object")
        result = extract_insights(load_sample("initech_qbr"), settings=settings)
        assert result.insights.action_items
        served = running.providers["openai"].snapshot()["requests"]
        assert len(served) == len(result.usage) == 2  # no refused first attempt
        assert {r["response_format"] for r in served} == {"json_object"}


def test_a_configured_json_schema_endpoint_does_not_fall_back() -> None:
    for running in _emulator("json_object_only"):
        settings = LLMSettings(base_url=running.urls["openai"], structured_output="json_schema")
        with pytest.raises(LLMRequestRejected, match="json_schema is not supported"):
            extract_insights(load_sample("initech_qbr"), settings=settings)


def test_json_mode_repairs_an_invalid_answer_within_bounds() -> None:
    for running in _emulator("json_object_only"):
        settings = LLMSettings(base_url=running.urls["openai"], structured_output="json_object")
        meeting = load_sample("sprint_planning")
        once = meeting.model_copy(
            update={"transcript": [*meeting.transcript, Utterance(text="SANDBOX_INVALID_OUTPUT")]}
        )
        result = extract_insights(once, settings=settings)
        assert result.insights.action_items
        assert len(result.usage) == 4  # each task answered invalid once, then repaired
        always = meeting.model_copy(
            update={"transcript": [*meeting.transcript, Utterance(text="SANDBOX_ALWAYS_INVALID")]}
        )
        with pytest.raises(LLMInvalidOutput, match=f"{compat.MAX_REPAIRS} repair"):
            extract_insights(always, settings=settings)


@pytest.mark.parametrize(
    "mode",
    [
        pytest.param("no_strict", id="vllm-flat-error"),
        pytest.param("json_object_only", id="ollama-string-error"),
        pytest.param("prompt_only", id="fastapi-detail-error"),
        pytest.param("text_errors", id="plain-text-error"),
    ],
)
def test_errors_in_other_shapes_keep_their_meaning(mode: str) -> None:
    for running in _emulator(mode, models={"tiny": 300}):
        settings = LLMSettings(base_url=running.urls["openai"], structured_output="prompt")
        client = make_client(settings)
        meeting = load_sample("initech_renewal")
        messages = [
            {"role": "user", "content": "json " + " ".join(u.text for u in meeting.transcript)}
        ]
        call = {"task": "action_items", "prompt_version": "v1", "messages": messages,
                "schema": ActionItems, "max_output_tokens": 50}  # fmt: skip
        with pytest.raises(InputTooLong, match="maximum context length"):
            call_structured(client, model="tiny", **call)
        with pytest.raises(LLMRequestRejected, match="does not exist") as missing:
            call_structured(client, model="gpt-9", **call)
        assert not isinstance(missing.value, InputTooLong)
        client.close()


def test_describe_error_reads_every_shape() -> None:
    assert compat.describe_error({"message": "m", "code": "c"}, "x") == ("c", "m")
    assert compat.describe_error("plain words", "x") == (None, "plain words")
    assert compat.describe_error({"detail": [{"msg": "bad"}]}, "x")[1] == '[{"msg": "bad"}]'
    assert compat.describe_error({"message": "m", "code": 400}, "x") == (None, "m")
    assert compat.describe_error(None, "fallback") == (None, "fallback")
