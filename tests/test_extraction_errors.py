"""How extraction fails: each provider answer maps to the error the worker acts on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from extraction.errors import (
    LLMInvalidOutput,
    LLMRateLimited,
    LLMRefused,
    LLMRequestRejected,
    LLMTransient,
)
from extraction.extract import extract_insights
from meetsync.models import MeetingOutput, Utterance
from meetsync.samples import load_sample
from meetsync.settings import LLMSettings
from sandbox.client import SandboxClient
from sandbox.server import Sandbox

PATH = "/v1/chat/completions"


@pytest.fixture
def admin(sandbox: Sandbox) -> Iterator[SandboxClient]:
    client = SandboxClient(sandbox.origins["openai"])
    client.clear_faults()
    yield client
    client.clear_faults()


@pytest.fixture
def settings(sandbox: Sandbox) -> LLMSettings:
    return LLMSettings(base_url=sandbox.urls["openai"])


def _with_line(text: str) -> MeetingOutput:
    meeting = load_sample("sprint_planning")
    extra = Utterance(speaker="Lee Chen", start=999.0, text=text)
    return meeting.model_copy(update={"transcript": [*meeting.transcript, extra]})


def test_429_becomes_rate_limited_with_the_providers_wait(
    admin: SandboxClient, settings: LLMSettings
) -> None:
    admin.arm("error", method="POST", path=PATH, status=429, retry_after=7)
    with pytest.raises(LLMRateLimited) as caught:
        extract_insights(load_sample("initech_qbr"), settings=settings)
    assert caught.value.retry_after == 7.0


def test_requests_per_minute_exhausted_waits_as_the_limiter_says() -> None:
    options = {"openai": {"rpm": 1, "clock": lambda: 0.0}}
    with Sandbox(only=["openai"], options=options) as running:
        settings = LLMSettings(base_url=running.urls["openai"])
        # the first task's call spends the only request; the CRM call must wait a minute
        with pytest.raises(LLMRateLimited) as caught:
            extract_insights(load_sample("initech_qbr"), settings=settings)
    assert caught.value.retry_after == pytest.approx(60.0)


@pytest.mark.parametrize("status", [pytest.param(500, id="500"), pytest.param(503, id="503")])
def test_server_errors_are_transient(
    admin: SandboxClient, settings: LLMSettings, status: int
) -> None:
    admin.arm("error", method="POST", path=PATH, status=status)
    with pytest.raises(LLMTransient):
        extract_insights(load_sample("initech_qbr"), settings=settings)


def test_refusal_is_llm_refused(settings: LLMSettings) -> None:
    with pytest.raises(LLMRefused):
        extract_insights(_with_line("SANDBOX_REFUSE"), settings=settings)


def test_invalid_answer_is_repaired_once(sandbox: Sandbox, settings: LLMSettings) -> None:
    result = extract_insights(_with_line("SANDBOX_INVALID_OUTPUT"), settings=settings)
    calls = [u.task for u in result.usage]
    # each task: one invalid answer, then one repaired answer
    assert calls == ["action_items", "action_items", "crm_fields", "crm_fields"]
    assert len(result.insights.action_items) == 8


def test_answer_still_invalid_after_repair_is_llm_invalid_output(settings: LLMSettings) -> None:
    with pytest.raises(LLMInvalidOutput):
        extract_insights(_with_line("SANDBOX_ALWAYS_INVALID"), settings=settings)


def test_wrong_key_is_rejected_not_retried() -> None:
    with Sandbox(only=["openai"], options={"openai": {"api_keys": ["right"]}}) as running:
        settings = LLMSettings(base_url=running.urls["openai"], api_key="wrong")
        with pytest.raises(LLMRequestRejected):
            extract_insights(load_sample("initech_qbr"), settings=settings)


def test_unreachable_endpoint_is_transient() -> None:
    settings = LLMSettings(base_url="http://127.0.0.1:9/v1", timeout_s=2)
    with pytest.raises(LLMTransient):
        extract_insights(load_sample("initech_qbr"), settings=settings)
