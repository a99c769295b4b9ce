"""The emulator's hostile models: valid answers that lie, quote the prompt, or never end."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from openai.lib._pydantic import to_strict_json_schema

from extraction.prompting import render_messages
from extraction.schemas import ActionItems, CrmFields
from meetsync.samples import load_sample
from sandbox.server import Sandbox

MODES = ["echo", "invent", "prompt"]


def _messages(task: str) -> list[Any]:
    meeting = load_sample("globex_discovery")
    return render_messages(task, "v1", meeting, list(enumerate(meeting.transcript)), None)


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=url, api_key="k", max_retries=0,
        http_client=openai.DefaultHttpxClient(trust_env=False),
    )  # fmt: skip


def test_the_hostile_models_are_listed(sandbox: Sandbox) -> None:
    ids = {m.id for m in _client(sandbox.urls["openai"]).models.list()}
    assert {f"hostile-{mode}" for mode in [*MODES, "huge"]} <= ids


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("task", "schema"),
    [
        pytest.param("action_items", ActionItems, id="items"),
        pytest.param("crm_fields", CrmFields, id="crm"),
    ],
)
def test_hostile_answers_parse_and_quote_real_lines(
    sandbox: Sandbox, mode: str, task: str, schema: type[Any]
) -> None:
    # given a hostile model asked through the SDK's structured outputs
    completion = _client(sandbox.urls["openai"]).chat.completions.parse(
        model=f"hostile-{mode}", messages=_messages(task), response_format=schema
    )
    # expect a schema-valid answer whose every quote is a transcript line
    parsed = completion.choices[0].message.parsed
    assert parsed is not None
    lines = {u.text for u in load_sample("globex_discovery").transcript}
    data = parsed.model_dump()
    quotes = [i["evidence"] for i in data.get("action_items", [])] + [
        f["evidence"] for f in data.values() if isinstance(f, dict)
    ]
    assert quotes and set(quotes) <= lines


def test_the_huge_model_streams_past_any_token_limit(sandbox: Sandbox) -> None:
    strict = {"name": "A", "strict": True, "schema": to_strict_json_schema(ActionItems)}
    body = {
        "model": "hostile-huge", "messages": _messages("action_items"),
        "max_completion_tokens": 16,
        "response_format": {"type": "json_schema", "json_schema": strict},
    }  # fmt: skip
    url = sandbox.urls["openai"] + "/chat/completions"
    headers = {"Authorization": "Bearer k"}
    with httpx.stream("POST", url, json=body, headers=headers, trust_env=False) as response:
        assert response.status_code == 200
        assert "content-length" not in response.headers
        size = sum(len(chunk) for chunk in response.iter_raw())
    assert size > 4 * 1024 * 1024
