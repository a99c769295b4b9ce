"""Asana OAuth for a connection: the authorization-code grant once, refresh grants after.

A connection authorised through an OAuth app stores `client_id`, `client_secret` and the
`refresh_token` the code grant returned (`exchange_code`); the connector trades the refresh
token for an hour-long access token when it starts and again when Asana answers 401
(https://developers.asana.com/docs/oauth). Only OAuth apps may use the task's `external`
field, so only such a connection gets Asana-side idempotency keys; a personal access token
falls back to a marker in the task's notes (see connectors/README.md).

The token endpoint lives beside the API: https://app.asana.com/-/oauth_token for
https://app.asana.com/api/1.0.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

import requests

from connectors.errors import AuthExpired, Transient

TIMEOUT_S = 15.0


def oauth_root(api_base: str) -> str:
    """https://app.asana.com for https://app.asana.com/api/1.0 (or the sandbox's origin)."""
    parts = urlsplit(api_base)
    return f"{parts.scheme}://{parts.netloc}"


def authorization_url(api_base: str, client_id: str, redirect_uri: str, state: str) -> str:
    """Where to send the admin's browser to authorise meetsync's OAuth app."""
    query = urlencode(
        {"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code",
         "state": state}
    )  # fmt: skip
    return f"{oauth_root(api_base)}/-/oauth_authorize?{query}"


def exchange_code(
    api_base: str, client_id: str, client_secret: str, redirect_uri: str, code: str
) -> dict[str, str]:
    """The credentials to store for a connection, from the code Asana redirected back with."""
    answer = _token(
        api_base,
        {"grant_type": "authorization_code", "client_id": client_id,
         "client_secret": client_secret, "redirect_uri": redirect_uri, "code": code},
    )  # fmt: skip
    return {
        "client_id": client_id,
        "client_secret": client_secret,
        "refresh_token": str(answer["refresh_token"]),
    }


def access_token(api_base: str, credentials: dict[str, Any]) -> str:
    """A fresh access token for a connection's stored refresh token."""
    answer = _token(
        api_base,
        {"grant_type": "refresh_token", "client_id": credentials.get("client_id", ""),
         "client_secret": credentials.get("client_secret", ""),
         "refresh_token": credentials.get("refresh_token", "")},
    )  # fmt: skip
    return str(answer["access_token"])


def _token(api_base: str, form: dict[str, str]) -> dict[str, Any]:
    url = f"{oauth_root(api_base)}/-/oauth_token"
    try:
        with requests.Session() as http:
            http.trust_env = urlsplit(url).hostname not in {"127.0.0.1", "localhost", "::1"}
            response = http.post(url, data=form, timeout=TIMEOUT_S)
    except requests.RequestException as exc:
        raise Transient(f"Asana's token endpoint unreachable: {type(exc).__name__}") from exc
    if response.status_code >= 500:
        raise Transient(f"Asana's token endpoint answered {response.status_code}")
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or "access_token" not in body:
        raise AuthExpired(
            f"Asana refused the OAuth grant: {body.get('error_description') or response.text}",
            provider_code=str(body.get("error") or response.status_code),
        )
    return body
