"""Every response the OpenAI emulator serves validates against OpenAI's published OpenAPI spec.

The spec is read from the shared reference copy at test time (never vendored;
`MEETSYNC_SPECS_DIR` overrides where). It is OpenAPI 3.1, so its schemas are JSON Schema
2020-12 and `$ref`s resolve inside the spec document. A recorder wraps the emulator's ASGI
app, so answers to the openai SDK are checked as well as those to raw HTTP calls. The spec
documents only 200 and 429 for chat completions; every other error status carries the
`ErrorResponse` body OpenAI's error-codes guide describes, so that is what they are held to.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import openai
import pytest
import yaml
from openai.types.chat import ChatCompletionMessageParam
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from extraction.schemas import ActionItems
from sandbox.client import SandboxClient
from sandbox.openai_api import OpenAISandbox
from sandbox.server import Sandbox
from tests.specs import spec_path

SPEC = spec_path("openai_openapi.yaml")
SPEC_URI = "urn:openai-oas"
KEY = "sk-sandbox-good"
AUTH = {"Authorization": f"Bearer {KEY}"}
PREFIX = "/v1"
RPM = 40
ERROR_BODY = {"$ref": f"{SPEC_URI}#/components/schemas/ErrorResponse"}
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "Extract the action items."},
    {"role": "user", "content": "Dana: I'll send the pricing sheet to Initech by Friday."},
]


class Recorder:
    """ASGI wrapper keeping (method, path, status, headers, body) of every response served."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[tuple[str, str, int, dict[str, str], bytes]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status, headers, chunks = 0, {}, []

        async def recording(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    entry = (scope["method"], scope["path"], status, headers, b"".join(chunks))
                    self.seen.append(entry)
            await send(message)

        await self.app(scope, receive, recording)


class FrozenClock:
    """A monotonic clock that never moves, so the per-minute buckets never refill."""

    def __call__(self) -> float:
        return 1000.0


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    # No skip when the spec is missing: CI has ../shared beside the clone, so absence is a bug.
    assert SPEC.is_file(), f"OpenAI spec not found at {SPEC}; set MEETSYNC_SPECS_DIR"
    with SPEC.open() as handle:
        loaded: dict[str, Any] = yaml.load(handle, Loader=yaml.CSafeLoader)
    return loaded


@pytest.fixture(scope="module")
def registry(spec: dict[str, Any]) -> Registry:
    return Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(spec))


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Sandbox, Recorder]]:
    options = {
        "api_keys": [KEY],
        "rpm": RPM,
        "tpm": 200_000,
        "clock": FrozenClock(),
        "models": {"sandbox-tiny": 40},
    }
    sandbox = Sandbox(only=["openai"], options={"openai": options})
    recorder = Recorder(sandbox.providers["openai"].app)
    sandbox.providers["openai"].app = recorder
    with sandbox:
        yield sandbox, recorder


def _sdk(url: str, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=url,
        api_key=key,
        max_retries=0,
        http_client=openai.DefaultHttpxClient(trust_env=False),
    )


def _exercise_sdk(url: str) -> None:
    """What meetsync's extraction sends: structured parse, plain create, refusal, models."""
    client = _sdk(url)
    parsed = client.chat.completions.parse(
        model="gpt-4o-mini",
        messages=MESSAGES,
        response_format=ActionItems,
    )
    assert parsed.choices[0].message.parsed is not None
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES, n=2)
    refused = client.chat.completions.parse(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "SANDBOX_REFUSE please"}],
        response_format=ActionItems,
    )
    assert refused.choices[0].message.refusal
    with pytest.raises(openai.LengthFinishReasonError):
        client.chat.completions.parse(
            model="gpt-4o-mini",
            messages=MESSAGES,
            response_format=ActionItems,
            max_completion_tokens=3,
        )
    assert [m.id for m in client.models.list()]
    with pytest.raises(openai.AuthenticationError):
        _sdk(url, key="sk-wrong-key-1234").models.list()
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-0", messages=MESSAGES)


def _exercise_raw(api: httpx.Client, admin: SandboxClient) -> None:
    """Documented failures and edges over plain HTTP, ending with the RPM limit reached."""
    chat = "/chat/completions"
    api.post(chat, json={"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": 2})
    api.post(
        chat,
        json={
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "Answer in json."}],
            "response_format": {"type": "json_object"},
        },
    )
    api.post(chat, content=b"{not json")
    api.post(chat, json={"messages": MESSAGES})
    api.post(chat, json={"model": "gpt-4o-mini", "messages": []})
    api.post(chat, json={"model": "gpt-4o-mini", "messages": MESSAGES, "temperature": 3})
    api.post(chat, json={"model": "sandbox-tiny", "messages": MESSAGES * 10})
    loose = {"type": "object", "properties": {"a": {"type": "string"}}}
    api.post(
        chat,
        json={
            "model": "gpt-4o-mini",
            "messages": MESSAGES,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "Loose", "strict": True, "schema": loose},
            },
        },
    )
    api.post(
        chat, json={"model": "gpt-4o-mini", "messages": MESSAGES}, headers={"Authorization": ""}
    )
    api.get("/models", headers={"Authorization": ""})
    api.get("/chat/completions")
    api.get("/assistants")
    api.post(
        chat, json={"model": "gpt-4.1", "messages": MESSAGES, "max_completion_tokens": 300_000}
    )
    for status in (400, 401, 404, 429, 500, 503):
        admin.arm("error", status=status, path=f"{PREFIX}{chat}", retry_after=2)
        api.post(chat, json={"model": "gpt-4o-mini", "messages": MESSAGES})
    admin.arm("error", status=429, path=f"{PREFIX}/models", retry_after=1)
    api.get("/models")
    for _ in range(RPM + 1):
        if api.post(chat, json={"model": "gpt-4o-mini", "messages": MESSAGES}).status_code == 429:
            break


@pytest.fixture(scope="module")
def recorded(
    served: tuple[Sandbox, Recorder],
) -> list[tuple[str, str, int, dict[str, str], bytes]]:
    sandbox, recorder = served
    _exercise_sdk(sandbox.urls["openai"])
    admin = SandboxClient(sandbox.origins["openai"])
    with httpx.Client(base_url=sandbox.urls["openai"], headers=AUTH, trust_env=False) as api:
        _exercise_raw(api, admin)
    admin.close()
    return [r for r in recorder.seen if r[1].startswith(PREFIX + "/")]


def _operation(spec: dict[str, Any], method: str, path: str) -> dict[str, Any] | None:
    operation: dict[str, Any] | None = (
        spec["paths"].get(path.removeprefix(PREFIX), {}).get(method.lower())
    )
    return operation


def _response_schema(spec: dict[str, Any], method: str, path: str, status: int) -> dict[str, Any]:
    """The documented body schema for a served (method, path, status)."""
    operation = _operation(spec, method, path)
    responses = operation["responses"] if operation else {}
    response = responses.get(str(status)) or responses.get(status)
    if response is None:
        assert status >= 400, f"{method} {path} answered undocumented {status}"
        return ERROR_BODY
    if "$ref" in response:
        response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema: dict[str, Any] = response["content"]["application/json"]["schema"]
    return _rooted(schema)


def _rooted(schema: dict[str, Any]) -> dict[str, Any]:
    """Point the schema's local `#/…` refs at the spec document."""
    text = json.dumps(schema).replace('"$ref": "#/', f'"$ref": "{SPEC_URI}#/')
    rooted: dict[str, Any] = json.loads(text)
    return rooted


def _errors(registry: Registry, schema: dict[str, Any], body: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(
        schema, registry=registry, format_checker=jsonschema.FormatChecker()
    )
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(body)]


def test_every_implemented_route_is_in_the_spec_and_was_exercised(
    spec: dict[str, Any], recorded: list[tuple[str, str, int, dict[str, str], bytes]]
) -> None:
    implemented = {
        (method, route.path)
        for route in OpenAISandbox().routes()
        if isinstance(route, Route) and "{" not in route.path
        for method in route.methods or ()
        if method != "HEAD"
    }
    exercised = {(m, p) for m, p, status, _, _ in recorded if status == 200}
    for method, path in implemented:
        assert _operation(spec, method, path) is not None, f"{method} {path}"
    assert implemented == {("POST", "/v1/chat/completions"), ("GET", "/v1/models")}
    assert implemented <= exercised


def test_every_served_response_matches_its_documented_schema(
    spec: dict[str, Any],
    registry: Registry,
    recorded: list[tuple[str, str, int, dict[str, str], bytes]],
) -> None:
    assert {200, 400, 401, 404, 429, 500, 503} <= {status for _, _, status, _, _ in recorded}
    finishes = {
        choice["finish_reason"]
        for _, path, status, _, body in recorded
        if status == 200 and path.endswith("/chat/completions")
        for choice in json.loads(body)["choices"]
    }
    assert finishes == {"stop", "length"}
    failures = []
    for method, path, status, headers, body in recorded:
        if not headers.get("content-type", "").startswith("application/json"):
            failures.append(f"{method} {path} {status}: not JSON: {body[:60]!r}")
            continue
        schema = _response_schema(spec, method, path, status)
        failures += [
            f"{method} {path} {status}: {problem}"
            for problem in _errors(registry, schema, json.loads(body))
        ]
    assert failures == []


def test_a_refusal_is_served_as_the_spec_describes_it(
    recorded: list[tuple[str, str, int, dict[str, str], bytes]],
) -> None:
    messages = [
        choice["message"]
        for _, path, status, _, body in recorded
        if status == 200 and path.endswith("/chat/completions")
        for choice in json.loads(body)["choices"]
    ]
    refusals = [m for m in messages if m["refusal"] is not None]
    assert refusals and all(m["content"] is None for m in refusals)


def test_429s_carry_the_documented_retry_after_header(
    spec: dict[str, Any], recorded: list[tuple[str, str, int, dict[str, str], bytes]]
) -> None:
    documented = spec["components"]["responses"]["TooManyRequests"]["headers"]["Retry-After"]
    throttled = [headers for _, _, status, headers, _ in recorded if status == 429]
    retry_afters = [int(h["retry-after"]) for h in throttled if "retry-after" in h]
    # Only the "request too large" answer omits it: waiting would not help.
    assert len(throttled) == 4 and len(retry_afters) == 3
    for value in retry_afters:
        jsonschema.validate(value, documented["schema"])


_COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "logprobs": None,
            "message": {"role": "assistant", "content": "{}", "refusal": None},
        }
    ],
}


def _broken(path: str, value: Any) -> dict[str, Any]:
    """The valid completion above with one field at `path` (dotted) replaced by `value`."""
    body = json.loads(json.dumps(_COMPLETION))
    *parents, last = path.split(".")
    node = body
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return body


def test_the_negative_control_body_is_otherwise_valid(
    spec: dict[str, Any], registry: Registry
) -> None:
    schema = _response_schema(spec, "POST", "/v1/chat/completions", 200)
    assert _errors(registry, schema, _COMPLETION) == []


@pytest.mark.parametrize(
    ("method", "path", "status", "body"),
    [
        pytest.param("POST", "/v1/chat/completions", 200, _broken("object", ...), id="no-object"),
        pytest.param(
            "POST", "/v1/chat/completions", 200, _broken("object", "completion"), id="bad-object"
        ),
        pytest.param(
            "POST",
            "/v1/chat/completions",
            200,
            _broken("choices.0.finish_reason", "done"),
            id="bad-finish-reason",
        ),
        pytest.param(
            "POST",
            "/v1/chat/completions",
            200,
            _broken("choices.0.message.role", "user"),
            id="nested-ref-role",
        ),
        pytest.param(
            "POST",
            "/v1/chat/completions",
            200,
            _broken("choices.0.logprobs", ...),
            id="no-logprobs",
        ),
        pytest.param(
            "POST",
            "/v1/chat/completions",
            200,
            _broken("usage", {"prompt_tokens": "12"}),
            id="usage-not-integers",
        ),
        pytest.param(
            "POST",
            "/v1/chat/completions",
            429,
            {"error": {"message": "slow down", "type": "requests"}},
            id="error-without-param-and-code",
        ),
        pytest.param("POST", "/v1/chat/completions", 500, {"error": "boom"}, id="error-as-string"),
        pytest.param(
            "GET",
            "/v1/models",
            200,
            {"object": "list", "data": [{"id": "gpt-4o", "object": "model", "created": 1}]},
            id="model-without-owner",
        ),
    ],
)
def test_the_check_rejects_what_openai_would_not_send(
    spec: dict[str, Any],
    registry: Registry,
    method: str,
    path: str,
    status: int,
    body: dict[str, Any],
) -> None:
    schema = _response_schema(spec, method, path, status)
    assert _errors(registry, schema, body)


def test_unknown_urls_get_openais_json_404_not_a_bare_page(
    recorded: list[tuple[str, str, int, dict[str, str], bytes]],
) -> None:
    unknown = {
        (method, path): json.loads(body)["error"]
        for method, path, status, _, body in recorded
        if status == 404 and json.loads(body)["error"]["message"].startswith("Invalid URL")
    }
    assert unknown == {
        (method, path): {
            "message": f"Invalid URL ({method} {path})",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
        for method, path in [("GET", "/v1/chat/completions"), ("GET", "/v1/assistants")]
    }
