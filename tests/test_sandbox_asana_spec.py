"""Every response the Asana emulator serves validates against Asana's published OpenAPI spec.

The spec is read from the shared reference copy at test time (never vendored): its
OpenAPI 3.0 schemas become JSON Schema (draft 4 plus `nullable`) and `$ref`s resolve
inside the spec document. A recorder wraps the emulator's ASGI app, so responses to the
asana SDK (through the connector) are checked as well as those to raw HTTP calls.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from referencing import Registry
from referencing.jsonschema import DRAFT4
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors.asana import AsanaConnector
from connectors.base import ConnectionConfig, Op
from sandbox.asana import PREFIX, AsanaSandbox
from sandbox.client import SandboxClient
from sandbox.server import Sandbox
from tests.contract.case_asana import oauth_token
from tests.specs import spec_path

SPEC = spec_path("asana_oas.yaml")
SPEC_URI = "urn:asana-oas"
AUTH = {"Authorization": "Bearer sandbox-pat"}
# Statuses every Asana operation may answer, documented once under components/responses.
GENERIC = {
    400: "BadRequest",
    401: "Unauthorized",
    402: "PaymentRequired",
    403: "Forbidden",
    404: "NotFound",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


class Recorder:
    """ASGI wrapper keeping (method, path, status, body) of every response served."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[tuple[str, str, int, bytes]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status, chunks = 0, []

        async def recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    self.seen.append((scope["method"], scope["path"], status, b"".join(chunks)))
            await send(message)

        await self.app(scope, receive, recording)


def _nullable_to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0's `nullable: true` (also inside allOf) as JSON Schema's null type."""
    if isinstance(node, list):
        return [_nullable_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _nullable_to_json_schema(value) for key, value in node.items()}
    members = out.get("allOf")
    nullable = out.pop("nullable", False) is True
    if isinstance(members, list) and any(
        isinstance(m, dict) and m.get("nullable") for m in node["allOf"]
    ):
        nullable = True
    if nullable:
        return {"anyOf": [{"type": "null"}, out]}
    return out


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    with SPEC.open() as handle:
        loaded: dict[str, Any] = yaml.load(handle, Loader=yaml.CSafeLoader)
    converted: dict[str, Any] = _nullable_to_json_schema(loaded)
    return converted


@pytest.fixture(scope="module")
def registry(spec: dict[str, Any]) -> Registry:
    return Registry().with_resource(SPEC_URI, DRAFT4.create_resource(spec))


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Sandbox, Recorder]]:
    sandbox = Sandbox(only=["asana"], options={"asana": {"requests_per_minute": 1500}})
    recorder = Recorder(sandbox.providers["asana"].app)
    sandbox.providers["asana"].app = recorder
    with sandbox:
        yield sandbox, recorder


def _template(spec: dict[str, Any], path: str) -> str | None:
    """The spec's path template for a served path; literal segments beat parameters."""
    relative = path.removeprefix(PREFIX)
    matches = [t for t in spec["paths"] if re.fullmatch(re.sub(r"\{[^/]+\}", "[^/]+", t), relative)]
    return min(matches, key=lambda t: t.count("{"), default=None)


def _response_schema(
    spec: dict[str, Any], template: str, method: str, status: int
) -> dict[str, Any]:
    responses = spec["paths"][template][method.lower()]["responses"]
    response = responses.get(status) or responses.get(str(status))
    if response is None:
        assert status in GENERIC, f"{method} {template} answered undocumented {status}"
        response = {"$ref": f"#/components/responses/{GENERIC[status]}"}
    if "$ref" in response:
        response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema: dict[str, Any] = response["content"]["application/json"]["schema"]
    return schema


def _exercise(sandbox: Sandbox) -> None:
    """Call every implemented route, successes and documented failures, raw and via the SDK."""
    admin = SandboxClient(sandbox.origins["asana"])
    # an OAuth app's token: the `external` field is refused to personal access tokens
    oauth = {"Authorization": f"Bearer {oauth_token(sandbox)}"}
    with httpx.Client(base_url=sandbox.urls["asana"], headers=oauth, trust_env=False) as api:
        workspace = api.get("/workspaces").json()["data"][0]["gid"]
        api.get("/users", params={"workspace": workspace})
        sam = api.get("/users/sam@acme.io").json()["data"]["gid"]
        api.get("/users/me")
        api.get("/users/nobody@acme.io")
        project = api.get("/projects", params={"workspace": workspace, "limit": 1}).json()
        project_gid = project["data"][0]["gid"]
        api.get(f"/projects/{project_gid}")
        sections = api.get(f"/projects/{project_gid}/sections").json()["data"]
        settings = api.get(f"/projects/{project_gid}/custom_field_settings").json()["data"]
        priority = next(s["custom_field"] for s in settings if s["custom_field"]["type"] == "enum")
        api.get(f"/sections/{sections[0]['gid']}")
        task = api.post(
            "/tasks",
            json={
                "data": {
                    "name": "Send pricing",
                    "html_notes": "<body>Send <em>pricing</em></body>",
                    "memberships": [{"project": project_gid, "section": sections[1]["gid"]}],
                    "assignee": "dana@acme.io",
                    "due_on": "2026-12-01",
                    "followers": [sam],
                    "custom_fields": {priority["gid"]: priority["enum_options"][0]["gid"]},
                    "external": {"gid": "spec-1", "data": "hash"},
                }
            },
        ).json()["data"]
        api.post(
            "/tasks",
            json={"data": {"name": "x", "projects": [project_gid], "due_on": "2026-02-30"}},
        )
        api.get("/tasks", params={"project": project_gid})
        api.get("/tasks", params={"section": sections[1]["gid"], "opt_fields": "name,external"})
        api.get("/tasks")
        api.get(f"/projects/{project_gid}/tasks")
        api.get(f"/sections/{sections[1]['gid']}/tasks")
        api.get("/tasks/external:spec-1")
        api.get(f"/tasks/{task['gid']}", params={"opt_fields": "name,assignee,permalink_url"})
        api.put(
            f"/tasks/{task['gid']}",
            json={"data": {"name": "Send revised pricing", "assignee": None, "due_on": None}},
        )
        api.post(f"/tasks/{task['gid']}/addFollowers", json={"data": {"followers": ["me"]}})
        api.post(f"/tasks/{task['gid']}/removeFollowers", json={"data": {"followers": [sam]}})
        api.post(f"/sections/{sections[2]['gid']}/addTask", json={"data": {"task": task["gid"]}})
        api.delete(f"/tasks/{task['gid']}")
        api.get(f"/tasks/{task['gid']}")
        api.get("/users/me", headers={"Authorization": ""})
        for status in (403, 429, 500, 503):
            admin.arm("error", status=status, path=f"{PREFIX}/workspaces", retry_after=3)
            api.get("/workspaces")
    connector = AsanaConnector(
        ConnectionConfig(
            name="asana-main",
            provider="asana",
            base_url=sandbox.urls["asana"],
            credentials={"token": "sandbox-pat"},
        )
    )
    fields = {
        "name": "Book the demo",
        "notes": "From the meeting",
        "due_on": "2026-11-02",
        "assignee_email": "lee@acme.io",
        "followers_emails": ["priya@acme.io"],
        "custom_fields": {"Priority": "High", "Meeting link": "https://meet/9"},
    }
    op = Op.plan(
        org_id="org-1",
        meeting_id="m-9",
        connector="asana",
        connection="asana-main",
        action="upsert_task",
        item_key="i-9",
        fields=fields,
        target={"project": "Sprint 42", "section": "In progress"},
    )
    receipt = connector.apply(op, None)
    changed = op.model_copy(update={"payload_hash": "changed"})
    connector.apply(changed, receipt)
    connector.find(op)
    # two new tasks in one Batch API request, one action of it refused (no name)
    twins = [
        op.model_copy(update={"key": f"{op.key}-{n}", "fields": {**fields, "name": name}})
        for n, name in enumerate(["Send the deck", "Share the notes"])
    ]
    connector.apply_many([(twin, None) for twin in twins])
    with httpx.Client(base_url=sandbox.urls["asana"], headers=AUTH, trust_env=False) as api:
        refused = {"method": "post", "relative_path": "/tasks", "data": {"name": "No place"}}
        api.post("/batch", json={"data": {"actions": [refused]}})


@pytest.fixture(scope="module")
def recorded(served: tuple[Sandbox, Recorder]) -> list[tuple[str, str, int, bytes]]:
    sandbox, recorder = served
    _exercise(sandbox)
    return [r for r in recorder.seen if r[1].startswith(PREFIX + "/")]


def test_every_implemented_route_is_in_the_spec_and_was_exercised(
    spec: dict[str, Any], recorded: list[tuple[str, str, int, bytes]]
) -> None:
    implemented = {
        (method, route.path.removeprefix(PREFIX))
        for route in AsanaSandbox().routes()
        if isinstance(route, Route)
        and route.path.startswith(PREFIX + "/")
        and "{rest:path}" not in route.path
        for method in route.methods or ()
        if method != "HEAD"
    }
    exercised = {(m, _template(spec, p)) for m, p, status, _ in recorded if status < 300}
    for method, template in implemented:
        assert method.lower() in spec["paths"].get(template, {}), f"{method} {template}"
    assert implemented <= exercised


def test_every_served_response_matches_its_documented_schema(
    spec: dict[str, Any], registry: Registry, recorded: list[tuple[str, str, int, bytes]]
) -> None:
    statuses = {status for _, _, status, _ in recorded}
    assert {200, 201, 400, 401, 403, 404, 429, 500, 503} <= statuses
    failures = []
    for method, path, status, body in recorded:
        template = _template(spec, path)
        assert template is not None, f"{method} {path} is not an Asana path"
        schema = _response_schema(spec, template, method, status)
        validator = jsonschema.Draft4Validator(
            _rooted(schema), registry=registry, format_checker=jsonschema.FormatChecker()
        )
        failures += [
            f"{method} {path} {status}: {e.json_path}: {e.message}"
            for e in validator.iter_errors(json.loads(body))
        ]
    assert failures == []


def test_error_bodies_carry_message_and_help(recorded: list[tuple[str, str, int, bytes]]) -> None:
    errors = [json.loads(body) for _, _, status, body in recorded if status >= 400]
    assert errors
    for body in errors:
        assert body["errors"] and all(e["message"] and e["help"] for e in body["errors"])


def _rooted(schema: dict[str, Any]) -> dict[str, Any]:
    """Point the schema's local `#/…` refs at the spec document."""
    text = json.dumps(schema).replace('"$ref": "#/', f'"$ref": "{SPEC_URI}#/')
    rooted: dict[str, Any] = json.loads(text)
    return rooted


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"data": {"gid": 1200}}, id="numeric-gid"),
        pytest.param({"data": {"gid": "1", "due_on": "soon"}}, id="bad-date"),
        pytest.param({"data": {"gid": "1", "assignee": "dana"}}, id="assignee-not-object"),
        pytest.param({"data": {"gid": "1", "custom_fields": [{"enum_value": 3}]}}, id="nested-ref"),
    ],
)
def test_the_check_rejects_what_asana_would_not_send(
    spec: dict[str, Any], registry: Registry, body: dict[str, Any]
) -> None:
    schema = _response_schema(spec, "/tasks/{task_gid}", "GET", 200)
    validator = jsonschema.Draft4Validator(
        _rooted(schema), registry=registry, format_checker=jsonschema.FormatChecker()
    )
    assert list(validator.iter_errors(body))
