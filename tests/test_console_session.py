"""Console sessions over plain HTTP (no browser): the cookie's flags, CSRF on sign-in and
on every form, revoked tokens, htmx redirects, and the pages' security headers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from admin.tokens import list_tokens, mint_token, revoke_token
from intake.app import create_app
from intake.console import session as sessions
from sandbox.server import Sandbox
from tests.admin_cli import Cli, add_sandbox_connections, make_cli
from workers.throttle.feedback import on_rate_limited
from workers.throttle.limits import make_throttle


class NoPipeline:
    def enqueue_extract(
        self, meeting_id: str, *, backfill: bool = False, org: str | None = None
    ) -> None:
        raise AssertionError("nothing here enqueues")


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    cli = make_cli(tmp_path, monkeypatch)
    cli.ok("orgs", "create", "acme")
    return cli


def client(cli: Cli, base_url: str = "http://meetsync.test") -> TestClient:
    return TestClient(create_app(cli.settings(), NoPipeline()), base_url=base_url)


def signed_in(http: TestClient, token: str) -> str:
    """Sign in through the form; the CSRF token the console's pages then carry."""
    form = http.get("/console/sign-in").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf is not None
    answer = http.post(
        "/console/sign-in", data={"csrf": csrf.group(1), "token": token}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    home = http.get("/console").text
    page_csrf = re.search(r'"X-CSRF-Token": "([0-9a-f]+)"', home)
    assert page_csrf is not None
    return page_csrf.group(1)


@pytest.fixture
def token(cli: Cli) -> str:
    with cli.session() as session:
        minted = mint_token(session, "acme", "console")
    return minted.token


def test_the_session_cookie_is_httponly_samesite_and_secure_behind_tls(
    cli: Cli, token: str
) -> None:
    with client(cli, "https://meetsync.test") as http:
        form = http.get("/console/sign-in")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        answer = http.post(
            "/console/sign-in", data={"csrf": csrf.group(1), "token": token}, follow_redirects=False
        )
    assert answer.status_code == 303, answer.text
    cookie = next(
        h for h in answer.headers.get_list("set-cookie") if h.startswith(sessions.COOKIE + "=")
    )
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=lax" in cookie
    assert "Path=/console" in cookie and token not in cookie


def test_a_sign_in_without_the_forms_csrf_token_is_refused(cli: Cli, token: str) -> None:
    with client(cli) as http:
        http.get("/console/sign-in")
        answer = http.post("/console/sign-in", data={"csrf": "forged", "token": token})
        assert answer.status_code == 403 and "stale or not the console" in answer.text
        assert sessions.COOKIE not in http.cookies
        assert http.get("/console", follow_redirects=False).status_code == 303


def test_a_revoked_token_ends_its_sessions(cli: Cli, token: str) -> None:
    with client(cli) as http:
        signed_in(http, token)
        assert http.get("/console/meetings").status_code == 200
        with cli.session() as session:
            row = list_tokens(session, "acme")[0]
            revoke_token(session, "acme", row.id)
        answer = http.get("/console/meetings", follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/console/sign-in?reason=revoked"
        # an htmx request is told where to go instead of getting the sign-in page swapped in
        htmx = http.get("/console/meetings", headers={"HX-Request": "true"})
        assert htmx.headers["HX-Redirect"] == "/console/sign-in?reason=revoked"


def test_every_form_needs_the_sessions_csrf_token(cli: Cli, token: str) -> None:
    with client(cli) as http:
        csrf = signed_in(http, token)
        other = sessions.csrf_token(
            cli.settings(), sessions.new_session("acme", "someone-else", "x")
        )
        for sent in ({}, {"csrf": other}):
            answer = http.post("/console/sign-out", data=sent)
            assert answer.status_code == 403 and "CSRF token" in answer.text
        # with its token as a header (htmx) or a field (a form), it is accepted
        assert http.post("/console/sign-out", headers={"X-CSRF-Token": csrf}).status_code == 200
        assert http.get("/console", follow_redirects=False).status_code == 303


def test_pages_carry_a_strict_content_security_policy(cli: Cli, token: str) -> None:
    with client(cli) as http:
        signed_in(http, token)
        page = http.get("/console/mappings")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    # the API keeps its own headers
    assert "content-security-policy" not in http.get("/healthz").headers


def test_a_connection_cooling_down_after_a_429_says_so(
    cli: Cli, token: str, redis_url: str, sandbox: Sandbox
) -> None:
    # given acme's Slack connection and the shared (Redis) throttle cooling its bucket down
    add_sandbox_connections(cli, sandbox)
    cli.env("MEETSYNC_THROTTLE__BACKEND", "redis")
    cli.env("MEETSYNC_REDIS_URL", redis_url)
    on_rate_limited(make_throttle(cli.settings()), "slack:acme-slack", 30)

    # when the connections page is read
    with client(cli) as http:
        signed_in(http, token)
        page = http.get("/console/connections").text

    # expect that connection's cooldown, and the others without one
    slack = page.split('id="conn-acme-slack"')[1].split("</section>")[0]
    assert re.search(r"cooling down (29|30)\.\d s after a 429", slack)
    assert page.count("cooling down") == 1
