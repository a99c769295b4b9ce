"""Each model gets only the parameters it takes: reasoning models no sampling, classic ones
temperature 0; quota and content-filter answers end extraction with a clear reason."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from extraction import models
from extraction.errors import LLMQuotaExhausted, LLMRefused
from extraction.extract import extract_insights
from extraction.llm import PlannedCall, gated
from meetsync.models import MeetingOutput, Utterance
from meetsync.samples import load_sample
from meetsync.settings import LLMSettings
from sandbox.server import Sandbox


def _requests(sandbox: Sandbox, since: int) -> list[dict[str, Any]]:
    log: list[dict[str, Any]] = sandbox.providers["openai"].snapshot()["requests"]
    return log[since:]


def _extract(sandbox: Sandbox, model: str, **settings: Any) -> list[dict[str, Any]]:
    """Extract a sample with `model` for both tasks; the requests the emulator saw."""
    since = len(sandbox.providers["openai"].snapshot()["requests"])
    llm = LLMSettings(
        base_url=sandbox.urls["openai"],
        models={"action_items": model, "crm_fields": model},
        **settings,
    )
    result = extract_insights(load_sample("initech_qbr"), settings=llm)
    assert result.insights.action_items, "the rules model finds action items in this sample"
    return _requests(sandbox, since)


def test_a_reasoning_model_gets_no_temperature_and_its_effort(sandbox: Sandbox) -> None:
    # before the capability table meetsync sent temperature=0 and gpt-5 answered 400
    sent = _extract(sandbox, "gpt-5", reasoning_effort="low")
    assert sent and all(r["temperature"] is None for r in sent)
    assert {r["reasoning_effort"] for r in sent} == {"low"}
    assert {r["token_parameter"] for r in sent} == {"max_completion_tokens"}


def test_a_classic_model_keeps_temperature_zero_and_gets_no_effort(sandbox: Sandbox) -> None:
    sent = _extract(sandbox, "gpt-4o-mini", reasoning_effort="low")
    assert sent and all(r["temperature"] == 0 for r in sent)
    assert {r["reasoning_effort"] for r in sent} == {None}
    assert {r["response_format"] for r in sent} == {"json_schema"}


def test_an_effort_the_model_does_not_take_is_not_sent(sandbox: Sandbox) -> None:
    sent = _extract(sandbox, "o4-mini", reasoning_effort="minimal")  # gpt-5 only
    assert {r["reasoning_effort"] for r in sent} == {None}


def test_an_unknown_model_gets_the_conservative_set() -> None:
    options = {"openai": {"models": {"acme-llm-70b": 128_000}}}
    with Sandbox(only=["openai"], options=options) as running:
        sent = _extract(running, "acme-llm-70b", reasoning_effort="high")
    assert sent and all(r["temperature"] is None for r in sent)
    assert {r["reasoning_effort"] for r in sent} == {None}


@pytest.mark.parametrize(
    ("model", "sampling", "mode", "window"),
    [
        pytest.param("gpt-5-2025-08-07", False, "json_schema", 400_000, id="dated-gpt5"),
        pytest.param("o3", False, "json_schema", 200_000, id="o3"),
        pytest.param("gpt-4.1-mini", True, "json_schema", 1_047_576, id="gpt-4.1-mini"),
        pytest.param("gpt-3.5-turbo", True, "json_object", 128_000, id="json-mode-only"),
        pytest.param("gpt-5-chat-latest", True, "json_schema", 128_000, id="gpt5-chat"),
    ],
)
def test_the_table_finds_a_model_by_its_family(
    model: str, sampling: bool, mode: str, window: int
) -> None:
    caps = models.capabilities(model)
    assert (caps.sampling, caps.structured_output, caps.context_window) == (
        sampling,
        mode,
        window,
    )


def test_a_json_mode_only_model_is_never_sent_a_strict_schema() -> None:
    options = {"openai": {"models": {"gpt-3.5-turbo": 16_385}}}
    with Sandbox(only=["openai"], options=options) as running:
        llm = LLMSettings(
            base_url=running.urls["openai"],
            models={"action_items": "gpt-3.5-turbo", "crm_fields": "gpt-3.5-turbo"},
        )
        extract_insights(load_sample("initech_qbr"), settings=llm)
        sent = _requests(running, since=0)
        calls = running.providers["openai"].stats()["requests"]["POST /v1/chat/completions"]
    assert sent and {r["response_format"] for r in sent} == {"json_object"}
    assert calls == len(sent)  # not one json_schema refused first and downgraded after


def test_an_account_out_of_quota_fails_with_a_clear_reason_not_a_wait() -> None:
    with Sandbox(only=["openai"], options={"openai": {"out_of_quota": True}}) as running:
        llm = LLMSettings(base_url=running.urls["openai"])
        with pytest.raises(LLMQuotaExhausted) as caught:
            extract_insights(load_sample("initech_qbr"), settings=llm)
    assert "out of quota" in str(caught.value)
    assert "You exceeded your current quota" in str(caught.value)


def test_an_answer_withheld_by_the_content_filter_is_a_refusal(sandbox: Sandbox) -> None:
    meeting = load_sample("sprint_planning")
    line = Utterance(speaker="Lee Chen", start=999.0, text="SANDBOX_CONTENT_FILTER")
    filtered = meeting.model_copy(update={"transcript": [*meeting.transcript, line]})
    assert isinstance(filtered, MeetingOutput)
    with pytest.raises(LLMRefused, match="content filter"):
        extract_insights(filtered, settings=LLMSettings(base_url=sandbox.urls["openai"]))


class _Recorder:
    """A call gate that only writes down what each call answered."""

    def __init__(self) -> None:
        self.statuses: list[int] = []

    def before(self, call: PlannedCall) -> None:
        pass

    def after(self, call: PlannedCall, status: int, headers: Mapping[str, str]) -> None:
        self.statuses.append(status)


def test_an_empty_account_does_not_cool_the_shared_rate_limit_down() -> None:
    # a 429 insufficient_quota reaches the throttle as what it is, not as a rate limit
    gate = _Recorder()
    with Sandbox(only=["openai"], options={"openai": {"out_of_quota": True}}) as running:
        llm = LLMSettings(base_url=running.urls["openai"])
        with gated(gate), pytest.raises(LLMQuotaExhausted):
            extract_insights(load_sample("initech_qbr"), settings=llm)
    assert gate.statuses == [402]
