"""Who a bearer token is: personal access tokens, and OAuth apps (authorization code + refresh).

Asana tells the two apart and so does the emulator: a personal access token works only if
the workspace issued it (any other is 401), and some properties (the task's `external`
field) are "OAuth Required". The OAuth endpoints are Asana's:

    GET  /-/oauth_authorize?client_id&redirect_uri&response_type=code&state
         the user consents at once; 302 to redirect_uri?code=…&state=…
    POST /-/oauth_token  grant_type=authorization_code (code, redirect_uri) or refresh_token,
         with client_id and client_secret; {"access_token", "expires_in", "token_type",
         "refresh_token" (code grant only), "data": {the user}}; errors are OAuth's
         {"error", "error_description"} with 400/401

Access tokens live `access_token_ttl` seconds (Asana: 3600); `POST /_sandbox/auth
{"action": "expire"}` ends every one now, so a client must refresh.
"""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

# the tokens meetsync's tests, demo and benchmarks use as personal access tokens
DEFAULT_PATS = ("sandbox-pat", "sandbox-pat-0123456789", "sandbox-asana-token")
DEFAULT_CLIENTS = {"sandbox-client": "sandbox-client-secret"}


class AsanaAuth:
    """Issued personal access tokens, OAuth clients, codes, access and refresh tokens."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.pats: set[str] = set(options.get("tokens", DEFAULT_PATS))
        self.clients: dict[str, str] = dict(options.get("oauth_clients", DEFAULT_CLIENTS))
        self.ttl = float(options.get("access_token_ttl", 3600))
        self.codes: dict[str, tuple[str, str]] = {}  # code → (client_id, redirect_uri)
        self.refresh_tokens: dict[str, str] = {}  # refresh token → client_id
        self.access_tokens: dict[str, float] = {}  # access token → expiry (monotonic)

    def kind(self, token: str) -> str | None:
        """ "pat", "oauth", or None for a token the workspace never issued (or expired)."""
        if token in self.pats:
            return "pat"
        expiry = self.access_tokens.get(token)
        if expiry is not None and expiry > time.monotonic():
            return "oauth"
        return None

    def expire(self) -> None:
        self.access_tokens.clear()

    def authorize(self, request: Request) -> Response:
        query = request.query_params
        client, redirect = query.get("client_id", ""), query.get("redirect_uri", "")
        if client not in self.clients or not redirect:
            return JSONResponse(
                {"error": "invalid_request", "error_description": "unknown client_id"}, 400
            )
        code = secrets.token_urlsafe(16)
        self.codes[code] = (client, redirect)
        answer = {"code": code, **({"state": query["state"]} if "state" in query else {})}
        return RedirectResponse(f"{redirect}?{urlencode(answer)}", status_code=302)

    def token(self, body: bytes, user: dict[str, Any]) -> JSONResponse:
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        client = form.get("client_id", "")
        if self.clients.get(client) != form.get("client_secret") or not client:
            return _oauth_error(401, "invalid_client", "client_id or client_secret is wrong")
        grant = form.get("grant_type")
        answer: dict[str, Any] = {}
        if grant == "authorization_code":
            issued = self.codes.pop(form.get("code", ""), None)
            if issued is None or issued != (client, form.get("redirect_uri")):
                return _oauth_error(400, "invalid_grant", "the code is wrong, used or expired")
            refresh = secrets.token_urlsafe(24)
            self.refresh_tokens[refresh] = client
            answer["refresh_token"] = refresh
        elif grant == "refresh_token":
            if self.refresh_tokens.get(form.get("refresh_token", "")) != client:
                return _oauth_error(400, "invalid_grant", "the refresh token is not valid")
        else:
            return _oauth_error(400, "unsupported_grant_type", f"grant_type {grant!r}")
        access = "oauth-" + secrets.token_urlsafe(24)
        self.access_tokens[access] = time.monotonic() + self.ttl
        data = {"id": user["gid"], "gid": user["gid"], "name": user["name"], "email": user["email"]}
        return JSONResponse(
            {
                "access_token": access,
                "token_type": "bearer",
                "expires_in": int(self.ttl),
                "data": data,
                **answer,
            }
        )


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)
