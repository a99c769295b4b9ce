"""The admin HTTP API: org-scoped tokens, mappings (list, get, put, validate, preview),
connections without secrets, and the OpenAPI document that describes it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from admin.tokens import mint_token
from intake.app import create_app
from sandbox.server import Sandbox
from tests.admin_cli import SECRETS, SLACK_TOKEN, Cli, add_sandbox_connections, make_cli

ACME = (Path(__file__).resolve().parents[1] / "mappings" / "examples" / "acme.yaml").read_text()


class NoPipeline:
    def enqueue_extract(
        self, meeting_id: str, *, backfill: bool = False, org: str | None = None
    ) -> None:
        raise AssertionError("the admin API never enqueues")


@pytest.fixture
def api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """Orgs acme and globex, acme's connections, and one admin token per org."""
    cli: Cli = make_cli(tmp_path, monkeypatch)
    cli.ok("orgs", "create", "acme")
    cli.ok("orgs", "create", "globex")
    add_sandbox_connections(cli, sandbox)
    with cli.session() as session:
        tokens = {org: mint_token(session, org).token for org in ("acme", "globex")}
    with TestClient(create_app(cli.settings(), NoPipeline())) as client:
        yield client, tokens


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


ROUTES = [
    pytest.param("GET", "/v1/admin/orgs/acme", None, id="org"),
    pytest.param("GET", "/v1/admin/orgs/acme/mappings", None, id="list"),
    pytest.param("GET", "/v1/admin/orgs/acme/mappings/latest", None, id="get"),
    pytest.param("PUT", "/v1/admin/orgs/acme/mappings", {"body": ACME}, id="put"),
    pytest.param("POST", "/v1/admin/orgs/acme/mappings/validate", {"body": ACME}, id="validate"),
    pytest.param(
        "POST", "/v1/admin/orgs/acme/mappings/preview", {"meeting_id": "m1"}, id="preview"
    ),
    pytest.param("GET", "/v1/admin/orgs/acme/connections", None, id="connections"),
    pytest.param("POST", "/v1/admin/orgs/acme/connections/acme-slack/test", None, id="test"),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_route_refuses_another_orgs_token_and_no_token(
    api: tuple[TestClient, dict[str, str]], method: str, path: str, body: Any
) -> None:
    client, tokens = api
    # given globex's valid token on acme's routes, then no token, then a made-up one
    other = client.request(method, path, json=body, headers=auth(tokens["globex"]))
    missing = client.request(method, path, json=body)
    wrong = client.request(method, path, json=body, headers=auth("msk_not-a-real-token"))

    # expect 403 for the other org, 401 for the rest, and nothing stored meanwhile
    assert other.status_code == 403 and "not for org 'acme'" in other.json()["detail"]
    assert missing.status_code == 401 and wrong.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    listed = client.get("/v1/admin/orgs/acme/mappings", headers=auth(tokens["acme"]))
    assert listed.json() == []


def test_mappings_are_put_listed_got_and_rolled_back(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    client, tokens = api
    headers = auth(tokens["acme"])
    base = "/v1/admin/orgs/acme/mappings"
    changed = ACME.replace("Priority: Normal", "Priority: High", 1)

    # when two versions are put, one of them twice, and version 1 is rolled back to
    first = client.put(base, json={"body": ACME, "comment": "start"}, headers=headers)
    second = client.put(base, json={"body": changed}, headers=headers)
    again = client.put(base, json={"body": changed}, headers=headers)
    rolled = client.post(f"{base}/rollback", json={"to": 1}, headers=headers)

    # expect 201, 201, 200 (unchanged), then version 3 with version 1's body
    assert [first.status_code, second.status_code, again.status_code] == [201, 201, 200]
    assert again.json()["created"] is False and again.json()["version"]["version"] == 2
    assert "+      Priority: High" in second.json()["version"]["diff"]
    assert rolled.json()["version"]["comment"] == "rollback to version 1"
    listed = client.get(base, headers=headers).json()
    assert [(v["version"], v["comment"]) for v in listed] == [
        (1, "start"),
        (2, None),
        (3, "rollback to version 1"),
    ]
    assert all(v["created_by"].startswith("admin token (") for v in listed)
    assert client.get(f"{base}/latest", headers=headers).json()["body"] == ACME
    assert client.get(f"{base}/2", headers=headers).json()["body"] == changed
    assert client.get(f"{base}/9", headers=headers).status_code == 404


def test_a_bad_mapping_is_refused_with_located_problems(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    client, tokens = api
    body = ACME.replace("    for_each: action_items", "    for_each: action_item", 1)

    # when a mapping with a typo is put
    response = client.put(
        "/v1/admin/orgs/acme/mappings", json={"body": body}, headers=auth(tokens["acme"])
    )

    # expect 422 naming the path, the line and the fix; nothing stored
    assert response.status_code == 422
    (problem,) = response.json()["detail"]["problems"]
    assert problem["path"] == "destinations[0].for_each" and problem["line"] == 15
    assert problem["fix"] == "did you mean 'action_items'?"


@pytest.mark.parametrize(
    ("body", "against", "ok", "paths"),
    [
        pytest.param(ACME, ["all"], True, [], id="fits"),
        pytest.param(
            ACME.replace('"#sales-meetings"', '"#general"'),
            ["all"],
            False,
            ["destinations[3].target"],
            id="bot-not-in-channel",
        ),
        pytest.param(
            ACME.replace('"#sales-meetings"', '"#general"'), [], True, [], id="file-alone"
        ),
        pytest.param(
            ACME.replace("org: acme", "org: globex"), ["all"], False, ["org"], id="another-org"
        ),
    ],
)
def test_validate_checks_against_the_providers(
    api: tuple[TestClient, dict[str, str]], body: str, against: list[str], ok: bool,
    paths: list[str],
) -> None:  # fmt: skip
    client, tokens = api
    response = client.post(
        "/v1/admin/orgs/acme/mappings/validate",
        json={"body": body, "against": against},
        headers=auth(tokens["acme"]),
    )
    assert response.status_code == 200
    report = response.json()
    assert report["ok"] is ok and [p["path"] for p in report["problems"]][: len(paths)] == paths


def test_connections_never_return_secrets(api: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = api
    headers = auth(tokens["acme"])
    base = "/v1/admin/orgs/acme/connections"

    # when a connection is added, listed and tested over the API
    added = client.post(
        base,
        json={
            "name": "acme-slack-2",
            "provider": "slack",
            "base_url": client.get(base, headers=headers).json()[2]["base_url"],
            "credentials": {"bot_token": SLACK_TOKEN},
        },
        headers=headers,
    )
    listed = client.get(base, headers=headers)
    tested = client.post(f"{base}/acme-slack-2/test", headers=headers)
    other = client.post(f"{base}/acme-slack/test", headers=auth(tokens["globex"]))

    # expect key names only, a working test, and globex unable to reach acme's connection
    assert added.status_code == 201 and added.json()["credential_keys"] == ["bot_token"]
    for text in (added.text, listed.text, tested.text):
        assert all(secret not in text for secret in SECRETS)
    assert tested.json()["ok"] is True
    assert other.status_code == 403
    assert client.delete(f"{base}/acme-slack-2", headers=headers).status_code == 204


def test_preview_of_another_orgs_meeting_is_refused(api: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = api
    meeting = {
        "org_id": "globex",
        "meeting_id": "m1",
        "title": "t",
        "start": "2026-11-17T15:00:00Z",
        "end": "2026-11-17T15:40:00Z",
    }
    response = client.post(
        "/v1/admin/orgs/acme/mappings/preview",
        json={"meeting": meeting},
        headers=auth(tokens["acme"]),
    )
    assert response.status_code == 403


def test_the_openapi_document_describes_the_admin_api(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    client, _ = api
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert {"get", "put"} <= set(paths["/v1/admin/orgs/{org_id}/mappings"])
    assert "post" in paths["/v1/admin/orgs/{org_id}/mappings/validate"]
    assert "post" in paths["/v1/admin/orgs/{org_id}/mappings/preview"]
    assert "get" in paths["/v1/admin/orgs/{org_id}/mappings/{version}"]
    assert schema["components"]["securitySchemes"]["AdminToken"]["scheme"] == "bearer"
    put = paths["/v1/admin/orgs/{org_id}/mappings"]["put"]
    assert put["security"] == [{"AdminToken": []}]
