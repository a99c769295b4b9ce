"""The Slack emulator's answers validate against Slack's published Web API swagger (2021).

The swagger predates message metadata and a few newer keys, so those are removed before
validating; everything else must match the schema Slack published for the method.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

from sandbox.server import Sandbox
from sandbox.slack import TOKEN
from tests.specs import spec_path

SPEC = spec_path("slack_web_openapi_v2.json")
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Keys Slack added after the 2021 swagger: message metadata, app ids, edit stamps.
NEWER_KEYS = {"metadata", "edited", "no_op", "response_metadata"}
NEWER_MESSAGE_KEYS = {"app_id"}
META = {"event_type": "meetsync_op", "event_payload": {"op_key": "k"}}


def _load_spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(SPEC.read_text())
    # Slack writes alternatives as a list under `items`; draft 4 would read that as a tuple
    # and check nothing on an object, so read it as the anyOf it means.
    for definition in spec["definitions"].values():
        if isinstance(definition.get("items"), list) and "type" not in definition:
            definition["anyOf"] = definition.pop("items")
    return spec


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return _load_spec()


@pytest.fixture(scope="module")
def api() -> Iterator[httpx.Client]:
    with (
        Sandbox(only=["slack"], options={"slack": {"rate_limits": False}}) as running,
        httpx.Client(base_url=running.urls["slack"], trust_env=False, timeout=10) as client,
    ):
        yield client


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        newer = NEWER_KEYS | (NEWER_MESSAGE_KEYS if value.get("type") == "message" else set())
        return {k: _strip(v) for k, v in value.items() if k not in newer}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _check(spec: dict[str, Any], method: str, body: dict[str, Any]) -> None:
    responses = next(iter(spec["paths"][f"/{method}"].values()))["responses"]
    schema = responses["200"]["schema"] if body["ok"] else responses["default"]["schema"]
    jsonschema.validate(
        _strip(body),
        {**schema, "definitions": spec["definitions"]},
        cls=jsonschema.Draft4Validator,
    )


def _call(api: httpx.Client, method: str, **args: Any) -> dict[str, Any]:
    body: dict[str, Any] = api.post(method, json=args, headers=AUTH).json()
    return body


@pytest.mark.parametrize(
    ("method", "args", "ok"),
    [
        pytest.param("auth.test", {}, True, id="auth.test"),
        pytest.param(
            "chat.postMessage",
            {
                "channel": "#eng-standup",
                "text": "hi",
                "blocks": [{"type": "divider"}],
                "metadata": META,
            },
            True,
            id="chat.postMessage",
        ),
        pytest.param(
            "chat.postMessage",
            {"channel": "#general", "text": "x"},
            False,
            id="chat.postMessage-error",
        ),
        pytest.param("conversations.list", {}, True, id="conversations.list"),
        pytest.param("conversations.info", {"channel": "C0SBX0001"}, True, id="conversations.info"),
        pytest.param(
            "conversations.info", {"channel": "C0SBX9999"}, False, id="conversations.info-error"
        ),
        pytest.param(
            "users.lookupByEmail", {"email": "dana@acme.io"}, True, id="users.lookupByEmail"
        ),
        pytest.param(
            "users.lookupByEmail", {"email": "x@y.z"}, False, id="users.lookupByEmail-error"
        ),
        pytest.param("users.info", {"user": "U0SBX0001"}, True, id="users.info"),
        pytest.param("conversations.open", {"users": "U0SBX0002"}, True, id="conversations.open"),
    ],
)
def test_answer_matches_slack_swagger(
    spec: dict[str, Any], api: httpx.Client, method: str, args: dict[str, Any], ok: bool
) -> None:
    body = _call(api, method, **args)
    assert body["ok"] is ok
    _check(spec, method, body)


def test_history_and_update_match_slack_swagger(spec: dict[str, Any], api: httpx.Client) -> None:
    posted = _call(
        api, "chat.postMessage", channel="#customer-escalations", text="v1", metadata=META
    )
    updated = _call(api, "chat.update", channel=posted["channel"], ts=posted["ts"], text="v2")
    history = _call(
        api, "conversations.history", channel=posted["channel"], include_all_metadata=True
    )
    assert updated["ok"] and history["ok"] and history["messages"]
    _check(spec, "chat.update", updated)
    _check(spec, "conversations.history", history)
