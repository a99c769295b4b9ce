"""One org never reads through another org's connections, nor sends credentials elsewhere."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from admin.meeting_store import store_meeting
from admin.tokens import mint_token
from intake.app import create_app
from meetsync.db.models import Connection, InsightRecord
from meetsync.models import MeetingOutput
from sandbox.server import Sandbox
from tests.admin_cli import ASANA_TOKEN, Cli, add_sandbox_connections, make_cli
from tests.test_admin_preview import INSIGHTS, MEETING

ACME = (Path(__file__).resolve().parents[1] / "mappings" / "examples" / "acme.yaml").read_text()


class NoPipeline:
    def enqueue_extract(
        self, meeting_id: str, *, backfill: bool = False, org: str | None = None
    ) -> None:
        raise AssertionError("the admin API never enqueues")


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Listener:
    """A loopback HTTP server that records what reaches it and answers with a secret page."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        seen = self.seen

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
                body = b"internal-only: root:x:0:0"
                self.send_response(200)
                self.send_header("content-type", "text/plain")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Listener:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def production(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox) -> Cli:
    """Production mode: real secrets, and only the sandbox's own ports allowed by the operator."""
    monkeypatch.setenv("MEETSYNC_MODE", "production")
    monkeypatch.setenv("MEETSYNC_WEBHOOK_SECRET", "whsec_" + "c2VjcmV0" * 4)
    monkeypatch.setenv("MEETSYNC_ENCRYPTION_KEYS", json.dumps([Fernet.generate_key().decode()]))
    monkeypatch.setenv("MEETSYNC_MEETING_LINK_SECRET", "link-secret-for-this-test")
    hosts = [urlsplit(url).netloc for url in sandbox.urls.values()]
    monkeypatch.setenv("MEETSYNC_ENDPOINTS__ALLOWED_HOSTS", json.dumps(hosts))
    monkeypatch.setenv("MEETSYNC_ENDPOINTS__CA_FILES", json.dumps([sandbox.ca_file]))
    cli = make_cli(tmp_path, monkeypatch)
    cli.ok("orgs", "create", "acme")
    cli.ok("orgs", "create", "globex")
    add_sandbox_connections(cli, sandbox)
    return cli


@pytest.fixture
def api(production: Cli) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with production.session() as session:
        tokens = {org: mint_token(session, org).token for org in ("acme", "globex")}
    with TestClient(create_app(production.settings(), NoPipeline())) as client:
        yield client, tokens


def test_a_draft_naming_another_orgs_connection_previews_nothing_of_it(
    production: Cli, api: tuple[TestClient, dict[str, str]]
) -> None:
    client, tokens = api
    # given a globex meeting with insights, and a draft that writes through acme's connections
    globex_meeting = MeetingOutput.model_validate(
        {**MEETING.model_dump(mode="json"), "org_id": "globex"}
    )
    with production.session() as session:
        stored = store_meeting(session, globex_meeting)
        session.add(
            InsightRecord(
                meeting_id=stored.meeting_id,
                cache_key="given",
                insights=INSIGHTS.model_dump(mode="json"),
            )
        )
    draft = ACME.replace("org: acme", "org: globex", 1)

    # when globex's admin previews that meeting with the draft
    response = client.post(
        "/v1/admin/orgs/globex/mappings/preview",
        json={"meeting_id": stored.meeting_id, "body": draft},
        headers=auth(tokens["globex"]),
    )

    # expect the draft refused like PUT refuses it, without acme's values or acme's name
    assert response.status_code == 422, response.text
    problems = response.json()["detail"]["problems"]
    assert {p["path"] for p in problems} >= {"connections.salesforce", "connections.asana"}
    assert "no connection named 'acme-salesforce' in this org" in response.text
    assert "belongs to" not in response.text and "'acme'" not in response.text
    assert "Globex" not in json.dumps(problems)  # no current values came back


def test_an_org_admin_cannot_point_a_connection_anywhere(
    production: Cli, api: tuple[TestClient, dict[str, str]]
) -> None:
    client, tokens = api
    with Listener() as listener:
        # when acme's admin adds connections whose endpoints are not the provider's
        answers = {
            url: client.post(
                "/v1/admin/orgs/acme/connections",
                json={
                    "name": f"evil-{i}",
                    "provider": "asana",
                    "base_url": url,
                    "credentials": {"token": ASANA_TOKEN},
                },
                headers=auth(tokens["acme"]),
            )
            for i, url in enumerate(
                [listener.url, "file:///etc/passwd", "http://app.asana.com/api/1.0"]
            )
        }
        proxied = client.post(
            "/v1/admin/orgs/acme/connections",
            json={
                "name": "evil-proxy",
                "provider": "slack",
                "credentials": {"bot_token": "xoxb-1"},
                "options": {"proxy": listener.url},
            },
            headers=auth(tokens["acme"]),
        )
        # and a connection stored before the check existed is tested
        with production.session() as session:
            row = session.get(Connection, "acme-asana")
            assert row is not None
            row.base_url = listener.url
        tested = client.post(
            "/v1/admin/orgs/acme/connections/acme-asana/test", headers=auth(tokens["acme"])
        )

    # expect every endpoint refused, and no request (no token) ever reaching the listener
    assert {url: r.status_code for url, r in answers.items()} == dict.fromkeys(answers, 422)
    assert "MEETSYNC_ENDPOINTS__ALLOWED_HOSTS" in answers[listener.url].text
    assert proxied.status_code == 422 and "MEETSYNC_ENDPOINTS__PROXIES" in proxied.text
    assert tested.status_code == 200 and tested.json()["ok"] is False
    assert "internal-only" not in tested.text
    assert listener.seen == []


def test_the_provider_host_itself_is_allowed(production: Cli) -> None:
    # when an org admin names the provider's real host (no call is made when adding)
    out = production.ok(
        "connections", "add", "acme-asana-real", "--org", "acme", "--provider", "asana",
        "--base-url", "https://app.asana.com/api/1.0", "--credential", "token=t-123456",
    )  # fmt: skip

    # expect it stored
    assert "acme-asana-real" in out


def test_a_taken_connection_name_does_not_say_whose(production: Cli) -> None:
    # when globex's admin adds a connection under a name acme uses
    result = production.fails(
        "connections", "add", "acme-slack", "--org", "globex", "--provider", "slack",
        "--credential", "bot_token=xoxb-2",
    )  # fmt: skip

    # expect refused, naming neither the owner nor that it is another org's
    text = result.stdout + result.stderr
    assert "is taken" in text and "acme'" not in text.replace("'acme-slack'", "")
    assert "another org" not in text


# -- the meeting page ------------------------------------------------------------------------
@pytest.fixture
def failed_meeting(production: Cli) -> str:
    """A globex meeting whose push failed with an error text an org keeps to itself."""
    from meetsync.db.models import Meeting, OpRecord

    globex_meeting = MeetingOutput.model_validate(
        {**MEETING.model_dump(mode="json"), "org_id": "globex"}
    )
    with production.session() as session:
        stored = store_meeting(session, globex_meeting)
        meeting = session.get(Meeting, stored.meeting_id)
        assert meeting is not None
        meeting.status, meeting.error = "planned", "Salesforce said: INVALID_FIELD on Secret__c"
        session.add(
            OpRecord(
                key="k" * 32,
                org_id="globex",
                meeting_id=stored.meeting_id,
                connector="asana",
                connection="globex-asana",
                action="upsert_task",
                target={},
                fields={},
                payload_hash="h",
                state="failed",
                last_error="403 Forbidden: project 'Globex M&A' is private",
                item={"title": "Send the security questionnaire"},
            )
        )
    return stored.meeting_id


def test_the_meeting_page_needs_the_orgs_token_or_a_signed_link(
    production: Cli, api: tuple[TestClient, dict[str, str]], failed_meeting: str
) -> None:
    from meetsync.links import meeting_link

    client, tokens = api
    settings = production.settings()
    link = meeting_link(settings, failed_meeting)
    path = f"/v1/meetings/{failed_meeting}"
    query = link.split("?", 1)[1]

    # when the page is asked for with nothing, another org's token, a link of another
    # meeting, a tampered link, an expired link, the org's token, and the signed link
    anonymous = client.get(path)
    acme = client.get(path, headers=auth(tokens["acme"]))
    other_link = client.get(f"{path}?{meeting_link(settings, 'another').split('?', 1)[1]}")
    tampered = client.get(f"{path}?{query[:-1]}{'0' if query[-1] != '0' else '1'}")
    expired = client.get(meeting_link(settings, failed_meeting, now=0).split("meetsync.test")[1])
    globex = client.get(path, headers=auth(tokens["globex"]))
    public = client.get(f"{path}?{query}")

    # expect 401 without a token or a valid link, 404 for another org, all for the org,
    # and for the link only what the recap shows: no error texts, no connection names
    assert [anonymous.status_code, other_link.status_code, tampered.status_code] == [401] * 3
    assert expired.status_code == 401 and acme.status_code == 404
    assert "Globex" not in acme.text
    assert globex.status_code == 200 and "Globex M&A" in globex.text
    assert public.status_code == 200, public.text
    assert public.json()["items"] == [
        {
            "provider": "asana",
            "title": "Send the security questionnaire",
            "state": "failed",
            "url": None,
        }
    ]
    assert "INVALID_FIELD" not in public.text and "Globex M&A" not in public.text
    assert "globex-asana" not in public.text
