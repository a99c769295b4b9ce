"""The OpenAI emulator, seen through the real openai SDK and plain HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from openai.lib._pydantic import to_strict_json_schema

from extraction.prompting import render_messages
from extraction.schemas import ActionItems, CrmFields
from meetsync.samples import load_sample, sample_names
from sandbox.server import Sandbox


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _client(url: str, key: str = "sandbox-key") -> openai.OpenAI:
    return openai.OpenAI(
        base_url=url,
        api_key=key,
        max_retries=0,
        http_client=openai.DefaultHttpxClient(trust_env=False),
    )


def _messages(name: str = "initech_renewal", task: str = "action_items") -> list[Any]:
    meeting = load_sample(name)
    return render_messages(task, "v1", meeting, list(enumerate(meeting.transcript)), None)


@pytest.fixture
def client(sandbox: Sandbox) -> openai.OpenAI:
    return _client(sandbox.urls["openai"])


@pytest.fixture
def limited() -> Iterator[tuple[Sandbox, FakeClock]]:
    clock = FakeClock()
    options = {"openai": {"rpm": 2, "tpm": 50_000, "clock": clock, "api_keys": ["good-key"]}}
    with Sandbox(only=["openai"], options=options) as running:
        yield running, clock


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in sample_names()])
@pytest.mark.parametrize(
    "schema", [pytest.param(ActionItems, id="action_items"), pytest.param(CrmFields, id="crm")]
)
def test_answer_validates_against_the_requested_schema(
    client: openai.OpenAI, name: str, schema: type[Any]
) -> None:
    task = "action_items" if schema is ActionItems else "crm_fields"
    raw = client.chat.completions.with_raw_response.parse(
        model="gpt-4o-mini", messages=_messages(name, task), response_format=schema
    )
    content = raw.http_response.json()["choices"][0]["message"]["content"]
    jsonschema.validate(httpx.Response(200, content=content).json(), to_strict_json_schema(schema))
    assert raw.parse().choices[0].message.parsed is not None


def test_completion_has_openai_shape_usage_and_limit_headers(sandbox: Sandbox) -> None:
    response = httpx.post(
        sandbox.urls["openai"] + "/chat/completions",
        headers={"Authorization": "Bearer sandbox-key"},
        json={"model": "gpt-4o-mini", "messages": _messages(), "store": False},
        trust_env=False,
    )
    body = response.json()
    assert response.status_code == 200
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert isinstance(body["created"], int) and body["model"].startswith("gpt-4o-mini")
    choice = body["choices"][0]
    assert set(choice) >= {"index", "message", "finish_reason", "logprobs"}
    assert choice["message"]["role"] == "assistant" and choice["message"]["refusal"] is None
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    for kind in ("requests", "tokens"):
        for part in ("limit", "remaining", "reset"):
            assert f"x-ratelimit-{part}-{kind}" in response.headers


def test_strict_schema_without_additional_properties_false_is_400(client: openai.OpenAI) -> None:
    loose = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    response_format: Any = {
        "type": "json_schema",
        "json_schema": {"name": "Loose", "schema": loose, "strict": True},
    }
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=_messages(), response_format=response_format
        )
    assert caught.value.code == "invalid_json_schema"
    assert caught.value.param == "response_format"


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        pytest.param({"model": "gpt-4o-mini", "messages": []}, 400, "messages", id="no-messages"),
        pytest.param(
            {"model": "gpt-4o-mini", "messages": [{"role": "robot", "content": "x"}]},
            400,
            "messages[0].role",
            id="bad-role",
        ),
        pytest.param(
            {"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]},
            404,
            "model",
            id="unknown-model",
        ),
        pytest.param(
            {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "x"}],
                "temperature": 3,
            },
            400,
            "temperature",
            id="temperature",
        ),
    ],
)
def test_bad_requests_get_openai_error_bodies(
    sandbox: Sandbox, body: dict[str, Any], status: int, param: str
) -> None:
    response = httpx.post(
        sandbox.urls["openai"] + "/chat/completions",
        headers={"Authorization": "Bearer sandbox-key"},
        json=body,
        trust_env=False,
    )
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["param"] == param


def test_too_small_max_tokens_truncates_with_finish_reason_length(client: openai.OpenAI) -> None:
    response_format: Any = {
        "type": "json_schema",
        "json_schema": {
            "name": "ActionItems",
            "schema": to_strict_json_schema(ActionItems),
            "strict": True,
        },
    }
    completion = client.chat.completions.create(
        model="gpt-4o-mini", messages=_messages(), max_completion_tokens=20,
        response_format=response_format,
    )  # fmt: skip
    choice = completion.choices[0]
    assert choice.finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 20
    assert choice.message.content and choice.message.content.startswith('{"action_items"')


def test_trigger_phrase_gets_a_refusal(client: openai.OpenAI) -> None:
    messages = [*_messages(), {"role": "user", "content": "SANDBOX_REFUSE"}]
    completion = client.chat.completions.parse(
        model="gpt-4o-mini", messages=messages, response_format=ActionItems
    )
    message = completion.choices[0].message
    assert message.refusal and message.content is None and message.parsed is None


def test_prompt_larger_than_the_context_window_is_rejected(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.parse(
            model="sandbox-small", messages=_messages(), response_format=ActionItems
        )
    assert caught.value.code == "context_length_exceeded"


def test_unknown_key_is_401_invalid_api_key(limited: tuple[Sandbox, FakeClock]) -> None:
    running, _ = limited
    with pytest.raises(openai.AuthenticationError) as caught:
        _client(running.urls["openai"], key="wrong-key").models.list()
    assert caught.value.code == "invalid_api_key"


def test_requests_per_minute_limit_answers_429_with_retry_after(
    limited: tuple[Sandbox, FakeClock],
) -> None:
    running, clock = limited
    client = _client(running.urls["openai"], key="good-key")
    tiny: list[Any] = [{"role": "user", "content": "hello"}]
    for _ in range(2):
        client.chat.completions.create(model="gpt-4o-mini", messages=tiny)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=tiny)
    headers = caught.value.response.headers
    assert caught.value.code == "rate_limit_exceeded"
    assert int(headers["retry-after"]) == 30  # 2 rpm: one request back every 30 s
    assert headers["x-ratelimit-remaining-requests"] == "0"
    clock.now += 30
    assert client.chat.completions.create(model="gpt-4o-mini", messages=tiny).choices


def test_tokens_per_minute_limit_counts_prompt_and_max_output(
    limited: tuple[Sandbox, FakeClock],
) -> None:
    running, _ = limited
    client = _client(running.urls["openai"], key="good-key")
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],  # type: ignore[list-item]
            max_completion_tokens=60_000,
        )  # fmt: skip
    assert "tokens per min" in caught.value.message


def test_snapshot_records_metadata_but_never_content(sandbox: Sandbox) -> None:
    client = _client(sandbox.urls["openai"])
    client.chat.completions.parse(
        model="gpt-4o-mini", messages=_messages(), response_format=ActionItems, store=False,
        temperature=0,
    )  # fmt: skip
    state = httpx.get(sandbox.origins["openai"] + "/_sandbox/state", trust_env=False).json()
    last = state["requests"][-1]
    assert state["completions"] >= 1
    assert last["schema"] == "ActionItems" and last["store"] is False and last["temperature"] == 0
    assert "Globex" not in str(state) and "redlines" not in str(state)
