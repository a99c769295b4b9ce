"""The OpenAI emulator refuses what api.openai.com refuses, seen through the real SDK."""

from __future__ import annotations

from typing import Any

import openai
import pytest
import yaml

from sandbox.openai_requests import KNOWN_ARGUMENTS
from sandbox.server import Sandbox
from tests.specs import spec_path

MESSAGES: list[Any] = [{"role": "user", "content": "Say hello in JSON."}]


@pytest.fixture
def client(sandbox: Sandbox) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=sandbox.urls["openai"],
        api_key="sandbox-key",
        max_retries=0,
        http_client=openai.DefaultHttpxClient(trust_env=False),
    )


def _refusal(client: openai.OpenAI, **arguments: Any) -> dict[str, Any]:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(messages=MESSAGES, **arguments)
    body: dict[str, Any] = caught.value.body  # type: ignore[assignment]
    return body


@pytest.mark.parametrize(
    ("model", "arguments", "param", "code"),
    [
        pytest.param("gpt-5", {"temperature": 0}, "temperature", "unsupported_value", id="gpt5-t0"),
        pytest.param("o4-mini", {"temperature": 0.2}, "temperature", "unsupported_value", id="o4"),
        pytest.param("o3", {"top_p": 0.5}, "top_p", "unsupported_parameter", id="o3-top_p"),
        pytest.param(
            "gpt-5-mini", {"presence_penalty": 0.1}, "presence_penalty", "unsupported_parameter",
            id="gpt5-penalty",
        ),
        pytest.param(
            "gpt-5", {"max_tokens": 100}, "max_tokens", "unsupported_parameter", id="max_tokens"
        ),
        pytest.param(
            "gpt-5", {"reasoning_effort": "none"}, "reasoning_effort", "unsupported_value",
            id="gpt5-effort-none",
        ),
        pytest.param(
            "gpt-4o-mini", {"reasoning_effort": "low"}, "reasoning_effort",
            "unsupported_parameter", id="classic-effort",
        ),
    ],
)  # fmt: skip
def test_a_model_refuses_the_parameters_it_does_not_take(
    client: openai.OpenAI, model: str, arguments: dict[str, Any], param: str, code: str
) -> None:
    body = _refusal(client, model=model, **arguments)
    assert (body["param"], body["code"]) == (param, code)


def test_a_reasoning_model_answers_without_sampling_parameters(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model="gpt-5", messages=MESSAGES, max_completion_tokens=200, reasoning_effort="minimal"
    )
    assert answer.choices[0].finish_reason == "stop"


def test_a_classic_model_still_takes_temperature_zero(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, temperature=0, max_tokens=200
    )
    assert answer.choices[0].finish_reason == "stop"


def test_an_unknown_argument_is_a_400(client: openai.OpenAI) -> None:
    body = _refusal(client, model="gpt-4o-mini", extra_body={"temprature": 0})
    assert body["message"] == "Unrecognized request argument supplied: temprature"


def test_the_known_arguments_are_the_published_ones() -> None:
    with spec_path("openai_openapi.yaml").open() as handle:
        spec = yaml.load(handle, Loader=yaml.CSafeLoader)
    schemas = spec["components"]["schemas"]

    def properties(schema: dict[str, Any]) -> set[str]:
        if "$ref" in schema:
            return properties(schemas[schema["$ref"].split("/")[-1]])
        found = set(schema.get("properties", {}))
        for part in schema.get("allOf", []):
            found |= properties(part)
        return found

    assert properties(schemas["CreateChatCompletionRequest"]) == KNOWN_ARGUMENTS


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param({"type": "array", "items": {"type": "string"}}, id="array"),
        pytest.param(
            {"anyOf": [{"type": "object", "properties": {}, "additionalProperties": False}]},
            id="anyOf",
        ),
    ],
)
def test_a_strict_schema_whose_root_is_not_an_object_is_refused(
    client: openai.OpenAI, schema: dict[str, Any]
) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "strict": True, "schema": schema}}
    body = _refusal(client, model="gpt-4o-mini", response_format=fmt)
    assert body["code"] == "invalid_json_schema"
    assert "must be a JSON Schema of 'type: \"object\"'" in body["message"]


def test_an_account_out_of_quota_is_a_429_without_retry_after() -> None:
    options = {"openai": {"out_of_quota": ["broke-key"]}}
    with Sandbox(only=["openai"], options=options) as running:
        broke = openai.OpenAI(
            base_url=running.urls["openai"], api_key="broke-key", max_retries=0,
            http_client=openai.DefaultHttpxClient(trust_env=False),
        )  # fmt: skip
        with pytest.raises(openai.RateLimitError) as caught:
            broke.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert caught.value.code == "insufficient_quota"
    assert "retry-after" not in caught.value.response.headers


def test_a_filtered_answer_ends_with_content_filter(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "json please SANDBOX_CONTENT_FILTER"}],
        response_format={"type": "json_object"},
    )
    assert answer.choices[0].finish_reason == "content_filter"


def test_a_model_older_than_structured_outputs_refuses_a_json_schema() -> None:
    options = {"openai": {"models": {"gpt-3.5-turbo": 16_385}}}
    with Sandbox(only=["openai"], options=options) as running:
        old = openai.OpenAI(
            base_url=running.urls["openai"], api_key="k", max_retries=0,
            http_client=openai.DefaultHttpxClient(trust_env=False),
        )  # fmt: skip
        fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
        body = _refusal(old, model="gpt-3.5-turbo", response_format=fmt)
        json_mode = old.chat.completions.create(
            model="gpt-3.5-turbo", messages=MESSAGES, response_format={"type": "json_object"}
        )
    assert body["param"] == "response_format" and "not supported" in body["message"]
    assert json_mode.choices[0].finish_reason == "stop"
