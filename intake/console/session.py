"""Console sessions: an admin token exchanged for a signed cookie, and CSRF on every form.

The cookie names the org, the token it was signed in with, an expiry and a random nonce,
signed with a key derived from the meeting-link secret (so sessions survive a restart and
work across processes). Each request checks the token is still live: revoking it ends its
sessions. The CSRF token is an HMAC of the nonce: every form and every htmx request sends
it, and a POST without it changes nothing. The sign-in form has its own CSRF token, tied to
a short-lived pre-session cookie, so nobody can sign a browser in to their org.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass
from urllib.parse import parse_qsl

from fastapi import Request, Response

from admin.tokens import live_token
from meetsync.db.session import session_scope
from meetsync.settings import Settings

COOKIE = "meetsync_console"
PRE_COOKIE = "meetsync_console_signin"
TTL_S = 8 * 3600
CSRF_HEADER = "X-CSRF-Token"
# the largest form the console takes: a mapping at its limit, escaped, and a little more
MAX_FORM_BYTES = 1_000_000


# why the sign-in page is shown instead of the page asked for
REASONS = {
    "expired": "Your session expired. Sign in again with your admin token.",
    "revoked": "The admin token of this session was revoked. Sign in with a live one.",
    "secret": "The console needs MEETSYNC_MEETING_LINK_SECRET to be set by the operator.",
    "signed-out": "You are signed out.",
}


class SignInRequired(Exception):
    """No session, or one that expired or whose token was revoked; `reason` says which."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


class Forbidden(Exception):
    """A POST without the CSRF token of this session (a forged or stale form)."""


class TooLarge(Exception):
    """A form larger than the console takes."""


@dataclass(frozen=True)
class ConsoleSession:
    org_id: str
    token_id: str
    label: str
    expires: int
    nonce: str

    @property
    def author(self) -> str:
        """How mapping versions record this admin (as the API records its token)."""
        return f"{self.label or 'admin token'} ({self.token_id[:8]}, console)"


def _key(settings: Settings) -> bytes:
    if settings.meeting_link_secret is None:
        raise SignInRequired("secret")
    root = settings.meeting_link_secret.get_secret_value().encode()
    return hmac.new(root, b"meetsync console session v1", hashlib.sha256).digest()


def _sign(settings: Settings, text: str) -> str:
    return hmac.new(_key(settings), text.encode(), hashlib.sha256).hexdigest()


def new_session(
    org_id: str, token_id: str, label: str, *, now: float | None = None
) -> ConsoleSession:
    now = time.time() if now is None else now
    return ConsoleSession(org_id, token_id, label, int(now) + TTL_S, secrets.token_urlsafe(16))


def encode(settings: Settings, session: ConsoleSession) -> str:
    """The cookie value: the session as base64 JSON, then its signature."""
    payload = base64.urlsafe_b64encode(json.dumps(asdict(session)).encode()).decode()
    return f"{payload}.{_sign(settings, 'session.' + payload)}"


def decode(settings: Settings, value: str, *, now: float | None = None) -> ConsoleSession:
    """The session a cookie carries; SignInRequired when forged, garbled or expired."""
    payload, _, signature = value.partition(".")
    if not hmac.compare_digest(signature, _sign(settings, "session." + payload)):
        raise SignInRequired("")
    try:
        session = ConsoleSession(**json.loads(base64.urlsafe_b64decode(payload)))
    except (ValueError, TypeError):
        raise SignInRequired("") from None
    if session.expires < (time.time() if now is None else now):
        raise SignInRequired("expired")
    return session


def csrf_token(settings: Settings, session: ConsoleSession) -> str:
    return _sign(settings, "csrf." + session.nonce)


def signin_csrf(settings: Settings, nonce: str) -> str:
    return _sign(settings, "signin." + nonce)


def current(request: Request) -> ConsoleSession:
    """The signed-in admin of this request (FastAPI dependency)."""
    settings: Settings = request.app.state.settings
    value = request.cookies.get(COOKIE)
    if not value:
        raise SignInRequired("")
    session = decode(settings, value)
    with session_scope(settings.database_url) as db:
        token = live_token(db, session.token_id)
        if token is None or token.org_id != session.org_id:
            raise SignInRequired("revoked")
    request.state.console = session
    request.state.csrf = csrf_token(settings, session)
    return session


async def form(request: Request) -> dict[str, str]:
    """The urlencoded form of a request (last value of each name); TooLarge past the limit."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise TooLarge()
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise TooLarge()
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


async def checked_form(request: Request) -> dict[str, str]:
    """The form of a signed-in POST whose CSRF token is this session's; Forbidden if not."""
    session = current(request)
    data = await form(request)
    sent = data.pop("csrf", None) or request.headers.get(CSRF_HEADER) or ""
    expected = csrf_token(request.app.state.settings, session)
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Forbidden()
    return data


def set_session(request: Request, response: Response, value: str) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=TTL_S,
        path="/console",
        httponly=True,
        secure=behind_tls(request),
        samesite="lax",
    )
    response.delete_cookie(PRE_COOKIE, path="/console")


def set_pre_session(request: Request, response: Response, nonce: str) -> None:
    response.set_cookie(
        PRE_COOKIE,
        nonce,
        max_age=3600,
        path="/console",
        httponly=True,
        secure=behind_tls(request),
        samesite="strict",
    )


def behind_tls(request: Request) -> bool:
    """Whether the browser reaches the console over https (directly or through a proxy)."""
    public = str(request.app.state.settings.public_base_url or "")
    return request.url.scheme == "https" or public.startswith("https://")
