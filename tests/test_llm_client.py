"""The LLM call path's per-process parts: one client per endpoint, and the request it sends."""

from __future__ import annotations

import json
from typing import Any

import openai
from pydantic import SecretStr

from extraction.answer_cap import sdk_http
from extraction.llm import call_structured, shared_client, strict_format
from extraction.schemas import ActionItems
from meetsync.settings import LLMSettings


def test_a_process_keeps_one_client_per_endpoint_key_and_answer_cap() -> None:
    settings = LLMSettings(base_url="http://127.0.0.1:9/v1", api_key=SecretStr("k1"))
    same = settings.model_copy(update={"models": {"action_items": "gpt-4o"}})
    other_key = settings.model_copy(update={"api_key": SecretStr("k2")})
    other_cap = settings.model_copy(update={"max_output_tokens": settings.max_output_tokens * 2})
    client = shared_client(settings)
    assert shared_client(same) is client
    assert shared_client(other_key) is not client
    assert shared_client(other_cap) is not client


def test_the_request_carries_the_messages_and_the_strict_schema_as_typed_arguments_did() -> None:
    sent: list[dict[str, Any]] = []

    def answer(request: Any) -> Any:
        sent.append(json.loads(request.content))
        body = {
            "choices": [{"message": {"content": '{"action_items": []}'}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 3},
        }
        return sdk_http.Response(200, json=body)

    http = sdk_http.Client(transport=sdk_http.MockTransport(answer))
    client = openai.OpenAI(
        base_url="http://127.0.0.1:9/v1", api_key="k", http_client=http, max_retries=0
    )
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    parsed, usage = call_structured(
        client,
        task="action_items",
        model="gpt-4o-mini",
        prompt_version="v1",
        messages=messages,
        schema=ActionItems,
        max_output_tokens=100,
    )
    assert parsed.action_items == [] and usage[0].input_tokens == 10
    assert sent[0]["messages"] == messages
    assert sent[0]["response_format"] == json.loads(json.dumps(strict_format(ActionItems)))
    assert sent[0]["model"] == "gpt-4o-mini" and sent[0]["store"] is False
