"""Webhook hardening: rotation, windows, size limits, ordering and a documented schema."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from intake.app import create_app
from intake.client import WEBHOOK_PATH, signed_headers
from intake.serving import BackgroundServer
from intake.signatures import sign
from meetsync.bootstrap import ensure_org
from meetsync.db.migrate import upgrade
from meetsync.db.models import Meeting
from meetsync.db.session import session_scope
from meetsync.settings import Settings
from tests.test_webhook import SECRET, Api, meeting_body
from workers.actors import declare
from workers.broker import make_broker
from workers.runtime import Runtime

LIMIT = 20_000


@pytest.fixture
def api(sqlite_url: str) -> Iterator[Api]:
    settings = Settings(
        database_url=sqlite_url,
        webhook_secret=SECRET,
        webhook_secret_previous="old-secret",
        webhook_max_body_bytes=LIMIT,
    )
    upgrade(sqlite_url)
    with session_scope(sqlite_url) as session:
        ensure_org(session, "acme", "Acme")
    pipeline = declare(make_broker("stub"), Runtime(settings))
    with TestClient(create_app(settings, pipeline)) as client:
        yield Api(client, pipeline, settings)


def raw(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def test_the_previous_secret_is_accepted_while_rotating(api: Api) -> None:
    body = raw(meeting_body())
    now = int(time.time())
    headers = {
        "content-type": "application/json",
        "x-meetsync-timestamp": str(now),
        "x-meetsync-signature": sign("old-secret", now, body),
    }
    response = api.client.post(WEBHOOK_PATH, content=body, headers=headers)
    assert response.status_code == 202
    assert api.queued() == 1


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        pytest.param({"x-meetsync-signature": ""}, "missing_signature", id="missing"),
        pytest.param(
            {"x-meetsync-timestamp": str(int(time.time()) - 301)}, "expired_timestamp", id="expired"
        ),
        pytest.param(
            {"x-meetsync-signature": sign("someone-else", int(time.time()), b"{}")},
            "bad_signature",
            id="bad",
        ),
    ],
)
def test_refused_deliveries_get_401_with_a_reason_and_store_nothing(
    api: Api, headers: dict[str, str], reason: str
) -> None:
    response = api.post(meeting_body(), **headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == reason
    assert api.stored() == (0, 0) and api.queued() == 0


def test_a_body_announced_over_the_limit_is_refused_before_it_is_read(api: Api) -> None:
    body = raw(meeting_body(summary="x" * LIMIT))
    response = api.post(body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
    assert api.stored() == (0, 0)


def test_a_chunked_body_is_cut_off_past_the_limit(api: Api) -> None:
    sent: list[int] = []

    def chunks() -> Iterator[bytes]:
        for _ in range(2_000):  # 16 MB if the server read it all
            sent.append(1)
            yield b" " * 8192

    pulled: list[int] = []
    app = api.client.app

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        async def counted() -> Any:
            message = await receive()
            pulled.append(len(message.get("body", b"")))
            return message

        await app(scope, counted, send)

    headers = signed_headers(SECRET, b"", legacy=True)
    with BackgroundServer(counting) as server, httpx.Client(base_url=server.url) as http:
        try:
            response = http.post(WEBHOOK_PATH, content=chunks(), headers=headers)
        except httpx.TransportError:  # the server may close while we still send: also a refusal
            status = 413
        else:
            status = response.status_code
    assert status == 413
    assert sum(pulled) < 1_000_000  # of 16 MB sent: the handler stopped reading at the limit
    assert api.stored() == (0, 0)


def test_an_older_revision_never_overwrites_a_newer_one(api: Api) -> None:
    newer = meeting_body(title="Revised", occurred_at="2026-11-20T16:00:00Z")
    older = meeting_body(title="Draft", occurred_at="2026-11-20T15:45:00Z")
    assert api.post(newer).status_code == 202
    late = api.post(older)
    assert late.status_code == 200 and late.json()["status"] == "stale"
    with session_scope(api.settings.database_url) as session:
        (row,) = session.query(Meeting).all()
        assert row.title == "Revised" and row.revision == 1
    assert api.queued() == 1  # the stale delivery enqueued nothing


def test_a_newer_revision_replaces_the_stored_one(api: Api) -> None:
    api.post(meeting_body(title="Draft", occurred_at="2026-11-20T15:45:00Z"))
    later = api.post(meeting_body(title="Revised", occurred_at="2026-11-20T16:00:00Z"))
    assert later.status_code == 202
    with session_scope(api.settings.database_url) as session:
        (row,) = session.query(Meeting).all()
        assert row.title == "Revised" and row.revision == 2
    assert api.queued() == 2


def test_a_replayed_stale_delivery_gets_the_same_answer(api: Api) -> None:
    api.post(meeting_body(occurred_at="2026-11-20T16:00:00Z"))
    older = meeting_body(title="Draft", occurred_at="2026-11-20T15:00:00Z")
    first = api.post(older, **{"x-meetsync-event-id": "evt-old"})
    again = api.post(older, **{"x-meetsync-event-id": "evt-old"})
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json() and again.headers["x-meetsync-replay"] == "true"


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        pytest.param(
            {"transcript_url": "https://notes.example.com/t/1"}, "", id="both-transcripts"
        ),
        pytest.param(
            {"transcript": [], "transcript_url": "ftp://x/1"}, "transcript_url", id="url-not-http"
        ),
        pytest.param({"occurred_at": "2026-11-20T16:00:00"}, "occurred_at", id="naive-occurred-at"),
    ],
)
def test_transcript_and_ordering_fields_are_validated(
    api: Api, overrides: dict[str, Any], path: str
) -> None:
    response = api.post(meeting_body(**overrides))
    assert response.status_code == 422
    assert path in [e["path"] for e in response.json()["error"]["errors"]]
    assert api.stored() == (0, 0)


def test_an_overlong_event_id_is_refused_not_a_server_error(api: Api) -> None:
    response = api.post(meeting_body(), **{"x-meetsync-event-id": "e" * 201})
    assert response.status_code == 422
    assert api.stored() == (0, 0)


def test_every_field_of_the_payload_is_documented_in_the_openapi(api: Api) -> None:
    schemas = api.client.get("/openapi.json").json()["components"]["schemas"]
    undocumented = [
        f"{name}.{field}"
        for name in ("MeetingOutput", "Attendee", "Utterance", "CrmRefs")
        for field, spec in schemas[name]["properties"].items()
        if not spec.get("description")
    ]
    assert undocumented == []
    assert "occurred_at" in schemas["MeetingOutput"]["properties"]
    assert "older" in schemas["MeetingOutput"]["properties"]["occurred_at"]["description"]
