"""Transcript URLs: fetched from allow-listed hosts only, never from private ranges by default."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse

from admin.meeting_store import store_meeting
from intake.serving import BackgroundServer
from meetsync.bootstrap import ensure_org
from meetsync.db.migrate import upgrade
from meetsync.db.models import InsightRecord
from meetsync.db.session import session_scope
from meetsync.models import MeetingOutput
from meetsync.settings import TranscriptFetchSettings
from meetsync.transcripts import (
    TranscriptUnavailable,
    address_allowed,
    fetch_transcript,
    with_transcript,
)
from sandbox.server import Sandbox
from sandbox.settings_for import settings_for
from workers import stages
from workers.runtime import Runtime

TOKEN = "Bearer notes-token"
LINES = [{"speaker": "Dana", "start": 1.0, "text": "I'll send the deck by Friday."}]


def notes_host() -> FastAPI:
    app = FastAPI()

    @app.get("/t/{name}")
    def transcript(name: str, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != TOKEN:
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        if name == "wrapped":
            return JSONResponse({"transcript": LINES})
        if name == "huge":
            return JSONResponse([LINES[0]] * 5_000)
        if name == "bad":
            return JSONResponse([{"speaker": "Dana"}])
        return JSONResponse(LINES)

    @app.get("/moved")
    def moved() -> RedirectResponse:
        return RedirectResponse("http://169.254.169.254/latest/meta-data")

    return app


@pytest.fixture(scope="module")
def host() -> Iterator[str]:
    with BackgroundServer(notes_host()) as server:
        yield server.url.rsplit(":", 1)[1]  # the port


def loopback(_: str, __: int) -> list[str]:
    return ["127.0.0.1"]


def allowed(**overrides: object) -> TranscriptFetchSettings:
    values: dict[str, object] = {
        "allowed_hosts": ["notes.internal"],
        "allowed_networks": ["127.0.0.0/8"],
        "auth_header": TOKEN,
        "max_bytes": 100_000,
    }
    values.update(overrides)
    return TranscriptFetchSettings.model_validate(values)


@pytest.mark.parametrize(
    "path", [pytest.param("plain", id="list"), pytest.param("wrapped", id="object")]
)
def test_an_allowed_host_is_fetched_with_the_configured_auth_header(host: str, path: str) -> None:
    lines = fetch_transcript(f"http://notes.internal:{host}/t/{path}", allowed(), resolver=loopback)
    assert [u.text for u in lines] == ["I'll send the deck by Friday."]


@pytest.mark.parametrize(
    ("url", "settings", "reason"),
    [
        pytest.param("http://evil.example:{port}/t/plain", allowed(), "not in", id="unlisted-host"),
        pytest.param(
            "http://notes.internal:{port}/t/plain",
            allowed(allowed_networks=[]),
            "non-public",
            id="loopback-without-allowance",
        ),
        pytest.param("http://127.0.0.1:{port}/t/plain", allowed(), "not in", id="literal-ip"),
        pytest.param("http://notes.internal:{port}/moved", allowed(), "307", id="redirect"),
        pytest.param("http://notes.internal:{port}/t/huge", allowed(), "over", id="too-big"),
        pytest.param("http://notes.internal:{port}/t/bad", allowed(), "not valid", id="invalid"),
        pytest.param(
            "http://notes.internal:{port}/t/plain",
            allowed(auth_header=None),
            "401",
            id="no-credential",
        ),
        pytest.param(
            "http://user:pw@notes.internal:{port}/t/plain", allowed(), "credentials", id="userinfo"
        ),
    ],
)
def test_refused_fetches_say_why(
    host: str, url: str, settings: TranscriptFetchSettings, reason: str
) -> None:
    with pytest.raises(TranscriptUnavailable) as refused:
        fetch_transcript(url.format(port=host), settings, resolver=loopback)
    assert reason in str(refused.value)


@pytest.mark.parametrize(
    ("address", "ok"),
    [
        pytest.param("8.8.8.8", True, id="public-v4"),
        pytest.param("2606:4700:4700::1111", True, id="public-v6"),
        pytest.param("127.0.0.1", False, id="loopback"),
        pytest.param("10.1.2.3", False, id="private-10"),
        pytest.param("172.16.0.9", False, id="private-172"),
        pytest.param("192.168.1.1", False, id="private-192"),
        pytest.param("169.254.169.254", False, id="link-local-metadata"),
        pytest.param("0.0.0.0", False, id="unspecified"),
        pytest.param("::1", False, id="loopback-v6"),
        pytest.param("fd00::1", False, id="unique-local-v6"),
        pytest.param("::ffff:10.0.0.1", False, id="v4-mapped-private"),
        pytest.param("224.0.0.1", False, id="multicast"),
    ],
)
def test_only_public_addresses_pass_without_an_allowance(address: str, ok: bool) -> None:
    assert address_allowed(ipaddress.ip_address(address), []) is ok


def test_an_allowed_network_lets_a_private_address_through() -> None:
    assert address_allowed(ipaddress.ip_address("10.1.2.3"), ["10.0.0.0/8"])
    assert not address_allowed(ipaddress.ip_address("10.1.2.3"), ["192.168.0.0/16"])


def test_a_host_resolving_to_any_private_address_is_refused() -> None:
    def mixed(_: str, __: int) -> list[str]:
        return ["8.8.8.8", "10.0.0.7"]

    with pytest.raises(TranscriptUnavailable):
        fetch_transcript("https://notes.internal/t/1", allowed(allowed_networks=[]), resolver=mixed)


def test_a_meeting_with_a_url_gets_its_transcript_inline(host: str) -> None:
    meeting = MeetingOutput.model_validate(
        {
            "org_id": "acme",
            "meeting_id": "m-url",
            "title": "Sync",
            "start": "2026-11-20T15:00:00Z",
            "end": "2026-11-20T15:30:00Z",
            "transcript_url": f"http://notes.internal:{host}/t/plain",
        }
    )
    full = with_transcript(meeting, allowed(), resolver=loopback)
    assert full.transcript_url is None and full.transcript[0].speaker == "Dana"


def test_the_extract_stage_reads_a_transcript_given_as_a_url(
    host: str, sandbox: Sandbox, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(sandbox, database_url=sqlite_url, transcript_fetch=allowed())
    upgrade(sqlite_url)
    monkeypatch.setattr("meetsync.transcripts.resolve", loopback)
    meeting = MeetingOutput.model_validate(
        {
            "org_id": "acme",
            "meeting_id": "m-url",
            "title": "Sync",
            "start": "2026-11-20T15:00:00Z",
            "end": "2026-11-20T15:30:00Z",
            "attendees": [{"name": "Dana", "email": "dana@acme.io", "internal": True}],
            "transcript_url": f"http://notes.internal:{host}/t/plain",
        }
    )
    with session_scope(sqlite_url) as session:
        ensure_org(session, "acme", "Acme")
        stored = store_meeting(session, meeting)
    runtime = Runtime(settings)
    assert stages.extract(runtime, stored.meeting_id).fresh is True
    with session_scope(sqlite_url) as session:
        record = session.query(InsightRecord).one()
        assert [i["title"] for i in record.insights["action_items"]]  # found in the fetched text
