"""Bad requests get a 4xx that says what is wrong, never a 500 (each case once found by
fuzzing the API)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.admin_cli import ASANA_TOKEN
from tests.test_admin_api import api, auth  # noqa: F401 (the fixture)
from tests.test_webhook import Api, meeting_body
from tests.test_webhook import api as webhook_api  # noqa: F401 (the fixture)

Client = tuple[TestClient, dict[str, str]]
BASE = "/v1/admin/orgs/acme/mappings"


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        pytest.param("POST", f"{BASE}/rollback", {"to": 36893488147419103231}, 422, id="overflow"),
        pytest.param("GET", f"{BASE}/99999999999999999999", None, 422, id="huge-version"),
        pytest.param("GET", f"{BASE}/2147483648", None, 404, id="past-int32"),
        pytest.param("GET", f"{BASE}/²", None, 422, id="superscript-digit"),
        pytest.param(
            "POST", "/v1/admin/orgs/acme/mappings/preview",
            {"meeting_id": "m", "version": 2**40}, 422, id="preview-version",
        ),
        pytest.param(
            "POST", "/v1/admin/orgs/acme/connections",
            {"name": "a\u0000b", "provider": "asana", "credentials": {"token": "t"}}, 422,
            id="nul-in-name",
        ),
    ],
)  # fmt: skip
def test_a_bad_request_is_a_4xx(
    api: Client,  # noqa: F811
    method: str,
    path: str,
    body: Any,
    status: int,
) -> None:
    client, tokens = api
    response = client.request(method, path, json=body, headers=auth(tokens["acme"]))
    assert response.status_code == status, response.text
    assert isinstance(response.json()["detail"], str | list)


class OddProvider:
    """A provider on loopback whose every answer is JSON of an unexpected shape."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps({"data": ["not", "an", "object"], "secret": "x" * 5000})
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/1.0"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def odd_provider() -> Iterator[OddProvider]:
    provider = OddProvider()
    yield provider
    provider.close()


def test_a_provider_answering_an_unexpected_shape_is_a_failed_check(
    api: Client,  # noqa: F811
    odd_provider: OddProvider,
) -> None:
    client, tokens = api
    # given a connection to a provider (an operator-allowed host) that answers oddly
    added = client.post(
        "/v1/admin/orgs/acme/connections",
        json={
            "name": "acme-odd",
            "provider": "asana",
            "base_url": odd_provider.url,
            "credentials": {"token": ASANA_TOKEN},
        },
        headers=auth(tokens["acme"]),
    )
    assert added.status_code == 201, added.text

    # when it is tested
    tested = client.post(
        "/v1/admin/orgs/acme/connections/acme-odd/test", headers=auth(tokens["acme"])
    )

    # expect a failed check saying so, short, without the provider's body
    assert tested.status_code == 200, tested.text
    report = tested.json()
    assert report["ok"] is False
    assert all(len(c["detail"]) <= 300 and "xxxx" not in c["detail"] for c in report["checks"])


def test_a_webhook_with_a_nul_character_is_refused(webhook_api: Api) -> None:  # noqa: F811
    # when a signed delivery carries a NUL character in its meeting id
    response = webhook_api.post(meeting_body(meeting_id="m\u00001"))

    # expect 422 naming it, nothing stored (SQLite would have taken it, PostgreSQL not)
    assert response.status_code == 422
    assert "NUL" in response.text
    assert webhook_api.stored() == (0, 0)
