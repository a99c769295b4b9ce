"""The org's OAuth: the refresh-token grant, the JWT bearer grant, and bearer-token checks.

Admin actions model what happens to a real connection: `expire` ends every access token
(a refresh still works), `revoke` also kills the refresh token (a person must reconnect),
`restore` makes the refresh token good again.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import jwt

ORG_ID = "00DDn00000Meets1"
DEFAULTS = {
    "client_id": "meetsync-sandbox-client",
    "client_secret": "meetsync-sandbox-secret",
    "refresh_token": "meetsync-sandbox-refresh",
}
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def oauth_error(error: str, description: str) -> tuple[int, dict[str, Any]]:
    return 400, {"error": error, "error_description": description}


class Auth:
    """Issued access tokens and the state of the connected app's one refresh token."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.client_id = str(options.get("client_id", DEFAULTS["client_id"]))
        self.client_secret = str(options.get("client_secret", DEFAULTS["client_secret"]))
        self.refresh_token = str(options.get("refresh_token", DEFAULTS["refresh_token"]))
        self.jwt_public_key: str | None = options.get("jwt_public_key")
        self.tokens: dict[str, str] = {}  # access token → user id
        self.revoked = False
        self.grants = 0

    def admin(self, action: str) -> None:
        if action not in ("expire", "revoke", "restore"):
            raise ValueError(f"unknown auth action {action!r}; use expire, revoke or restore")
        if action in ("expire", "revoke"):
            self.tokens.clear()
        self.revoked = action == "revoke"

    def user_for(self, authorization: str | None) -> str | None:
        """The user a bearer token acts as, or None when it is unknown or expired."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() not in ("bearer", "oauth"):
            return None
        return self.tokens.get(token.strip())

    def grant(
        self, form: dict[str, str], instance_url: str, users: dict[str, str], default_user: str
    ) -> tuple[int, dict[str, Any]]:
        """Answer POST /services/oauth2/token; `users` maps usernames to user ids."""
        kind = form.get("grant_type", "")
        if kind == "refresh_token":
            return self._refresh(form, instance_url, default_user)
        if kind == JWT_GRANT:
            return self._jwt(form, instance_url, users)
        return oauth_error("unsupported_grant_type", "grant type not supported")

    def _refresh(
        self, form: dict[str, str], instance_url: str, user_id: str
    ) -> tuple[int, dict[str, Any]]:
        if form.get("client_id") != self.client_id:
            return oauth_error("invalid_client_id", "client identifier invalid")
        if form.get("client_secret", self.client_secret) != self.client_secret:
            return oauth_error("invalid_client", "invalid client credentials")
        if self.revoked or form.get("refresh_token") != self.refresh_token:
            return oauth_error("invalid_grant", "expired access/refresh token")
        return 200, self._issue(instance_url, user_id)

    def _jwt(
        self, form: dict[str, str], instance_url: str, users: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        if self.jwt_public_key is None:
            return oauth_error("invalid_grant", "invalid assertion")
        try:
            claims = jwt.decode(
                form.get("assertion", ""),
                self.jwt_public_key,
                algorithms=["RS256"],
                options={"verify_aud": False, "require": ["exp", "sub", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            return oauth_error("invalid_grant", "expired authorization code")
        except jwt.PyJWTError:
            return oauth_error("invalid_grant", "invalid assertion")
        if claims.get("iss") != self.client_id:
            return oauth_error("invalid_client_id", "client identifier invalid")
        user_id = users.get(str(claims.get("sub", "")).lower())
        if user_id is None or self.revoked:
            return oauth_error("invalid_grant", "user hasn't approved this consumer")
        return 200, self._issue(instance_url, user_id)

    def _issue(self, instance_url: str, user_id: str) -> dict[str, Any]:
        token = f"{ORG_ID}!{secrets.token_urlsafe(32)}"
        self.tokens[token] = user_id
        self.grants += 1
        return {
            "access_token": token,
            "signature": secrets.token_urlsafe(24),
            "scope": "api refresh_token",
            "instance_url": instance_url,
            "id": f"{instance_url}/id/{ORG_ID}/{user_id}",
            "token_type": "Bearer",
            "issued_at": str(int(time.time() * 1000)),
        }
