"""The meeting-completed webhook: 202 for good deliveries, clear refusals for the rest."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from intake.app import create_app
from intake.client import WEBHOOK_PATH, signed_headers
from meetsync.bootstrap import ensure_org
from meetsync.db.migrate import upgrade
from meetsync.db.models import Meeting, WebhookEvent
from meetsync.db.session import session_scope
from meetsync.settings import Settings
from workers.actors import Pipeline, declare
from workers.broker import make_broker
from workers.runtime import Runtime

SECRET = "test-secret"


def meeting_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "org_id": "acme",
        "meeting_id": "m-1",
        "title": "Globex discovery",
        "start": "2026-11-20T15:00:00Z",
        "end": "2026-11-20T15:30:00Z",
        "timezone": "America/New_York",
        "attendees": [
            {"name": "Dana Reyes", "email": "dana@acme.io", "internal": True},
            {"name": "Hank Scorpio", "email": "hank@globex.com", "internal": False},
        ],
        "transcript": [
            {"speaker": "Dana Reyes", "start": 1.0, "text": "I'll send the SOC 2 report by Friday."}
        ],
    }
    body.update(overrides)
    return body


@dataclass
class Api:
    client: TestClient
    pipeline: Pipeline
    settings: Settings

    def post(self, body: dict[str, Any] | bytes, **headers: str) -> Any:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent = {**signed_headers(SECRET, raw, legacy=True), **headers}
        return self.client.post(WEBHOOK_PATH, content=raw, headers=sent)

    def queued(self) -> int:
        # the extraction is enqueued after the answer went out (intake.deliveries)
        assert self.client.app.state.deliveries.wait_idle()  # type: ignore[attr-defined]
        return self.pipeline.broker.queues["extract"].qsize()  # type: ignore[attr-defined]

    def stored(self) -> tuple[int, int]:
        with session_scope(self.settings.database_url) as session:
            meetings = session.scalar(select(func.count()).select_from(Meeting))
            events = session.scalar(select(func.count()).select_from(WebhookEvent))
        return int(meetings or 0), int(events or 0)


@pytest.fixture
def api(sqlite_url: str) -> Iterator[Api]:
    settings = Settings(database_url=sqlite_url, webhook_secret=SECRET)
    upgrade(sqlite_url)
    with session_scope(sqlite_url) as session:
        ensure_org(session, "acme", "Acme")
    pipeline = declare(make_broker("stub"), Runtime(settings))
    with TestClient(create_app(settings, pipeline)) as client:
        yield Api(client, pipeline, settings)


def test_a_signed_valid_delivery_is_stored_enqueued_and_answered_202(api: Api) -> None:
    response = api.post(meeting_body())
    assert response.status_code == 202
    answer = response.json()
    assert f"/v1/meetings/{answer['meeting_id']}?exp=" in answer["status_url"]
    assert api.stored() == (1, 1)
    assert api.queued() == 1
    # the status URL is a signed link: it opens the meeting's public view
    status = api.client.get(answer["status_url"]).json()
    assert status["status"] == "received" and status["title"] == "Globex discovery"


def test_a_replayed_delivery_gets_the_original_answer_and_nothing_more(api: Api) -> None:
    first = api.post(meeting_body(), **{"x-meetsync-event-id": "evt-1"})
    second = api.post(meeting_body(), **{"x-meetsync-event-id": "evt-1"})
    assert second.status_code == 202 and second.json() == first.json()
    assert second.headers["x-meetsync-replay"] == "true"
    assert api.queued() == 1 and api.stored() == (1, 1)


def test_a_bad_signature_gets_401_and_stores_nothing(api: Api) -> None:
    response = api.post(meeting_body(), **{"x-meetsync-signature": "v1=" + "0" * 64})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "bad_signature"
    assert api.stored() == (0, 0) and api.queued() == 0


@pytest.mark.parametrize(
    ("body", "path"),
    [
        pytest.param(meeting_body(start="yesterday"), "start", id="bad-date"),
        pytest.param(meeting_body(title=""), "title", id="empty-title"),
        pytest.param(meeting_body(timezone="Mars/Olympus"), "timezone", id="bad-zone"),
        pytest.param(
            meeting_body(attendees=[{"name": "X", "email": "not-an-email"}]),
            "attendees.0.email",
            id="bad-email",
        ),
        pytest.param(
            meeting_body(transcript=[{"speaker": "A"}]),
            "transcript.0.text",
            id="utterance-without-text",
        ),
        pytest.param(meeting_body(colour="red"), "colour", id="unknown-field"),
    ],
)
def test_an_invalid_body_gets_422_naming_the_field_and_stores_nothing(
    api: Api, body: dict[str, Any], path: str
) -> None:
    response = api.post(body)
    assert response.status_code == 422
    assert path in [e["path"] for e in response.json()["error"]["errors"]]
    assert api.stored() == (0, 0) and api.queued() == 0


def test_malformed_json_gets_422(api: Api) -> None:
    response = api.post(b"{not json")
    assert response.status_code == 422
    assert api.stored() == (0, 0)


def test_an_unknown_org_gets_404_and_stores_nothing(api: Api) -> None:
    response = api.post(meeting_body(org_id="nobody"))
    assert response.status_code == 404
    assert api.stored() == (0, 0) and api.queued() == 0


def test_the_openapi_documents_every_field_of_the_payload(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    fields = schema["components"]["schemas"]["MeetingOutput"]["properties"]
    assert {
        "org_id",
        "meeting_id",
        "title",
        "start",
        "end",
        "timezone",
        "attendees",
        "transcript",
        "summary",
    } <= set(fields)
