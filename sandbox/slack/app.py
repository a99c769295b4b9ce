"""Slack Web API emulator: the methods meetsync calls, with Slack's errors and rate limits.

Every method is `POST /api/<method>` (GET works too), taking form fields, a JSON body or
query parameters, with the token in `Authorization: Bearer` or a `token` field. Like Slack,
it answers HTTP 200 with `{"ok": false, "error": ...}` for API errors and HTTP 429 with
`Retry-After` when rate limited.

Options (`Sandbox(options={"slack": {...}})`):
    channel_rate, channel_burst     chat.postMessage per channel (default 1/s, burst 5)
    workspace_rate, workspace_burst chat.postMessage per workspace (default 10/s, burst 100)
    rate_limits                     False turns these and the method tiers off (benchmarks)
    marketplace                     False: an app outside the Marketplace (history 1/min, 15)
    token                           the bot token the workspace accepts

Admin: `POST /_sandbox/auth {"action": "revoke"|"restore"}`.
"""

from __future__ import annotations

import math
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from sandbox.slack.arguments import _arguments
from sandbox.slack.errors import _RateLimited, _SlackError
from sandbox.slack.interactions import SlackInteractions
from sandbox.slack.methods import SlackMethods


class SlackSandbox(SlackMethods, SlackInteractions):
    """One Slack workspace with its people, channels, the bot and its messages."""

    name = "slack"

    def snapshot(self) -> dict[str, Any]:
        # interactivity (sandbox/slack/interactions.py): views, response URLs, payloads sent
        return {**super().snapshot(), **self.interaction_snapshot()}

    def error_response(
        self,
        status: int,
        retry_after: float | None = None,
        code: str | None = None,
        message: str | None = None,
    ) -> JSONResponse:
        """Injected faults as Slack sends them: 429 + Retry-After + `ratelimited`."""
        if status == 429:
            wait = str(math.ceil(retry_after if retry_after is not None else 1))
            return JSONResponse(
                {"ok": False, "error": "ratelimited"},
                status_code=429,
                headers={"Retry-After": wait},
            )
        return JSONResponse({"ok": False, "error": code or "fatal_error"}, status_code=status)

    # -- routes -----------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        methods = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.delete": self._delete,
            "conversations.history": self._history,
            "conversations.list": self._list,
            "conversations.info": self._info,
            "conversations.open": self._open,
            "users.lookupByEmail": self._lookup_by_email,
            "users.info": self._users_info,
            "users.list": self._users_list,
            **self.interaction_methods(),
        }

        async def call(request: Request) -> JSONResponse:
            handler = methods.get(request.path_params["method"])
            if handler is None:
                return JSONResponse({"ok": False, "error": "unknown_method"}, status_code=404)
            try:
                args = await _arguments(request)
                with self.lock:
                    self._authenticate(request, args)
                    self._tier_limit(request.path_params["method"])
                    result = handler(args)
            except _RateLimited as limited:
                return JSONResponse(
                    {"ok": False, "error": "ratelimited"},
                    status_code=429,
                    headers={"Retry-After": str(limited.retry_after)},
                )
            except _SlackError as failed:
                return JSONResponse({"ok": False, "error": failed.error, **failed.extra})
            return JSONResponse({"ok": True, **result})

        async def auth(request: Request) -> JSONResponse:
            action = (await request.json()).get("action")
            if action not in {"revoke", "restore"}:
                return JSONResponse({"error": f"unknown action {action!r}"}, status_code=400)
            with self.lock:
                self.revoked = action == "revoke"
            return JSONResponse({"ok": True, "revoked": self.revoked})

        return [
            Route("/_sandbox/auth", auth, methods=["POST"]),
            Route("/api/{method}", call, methods=["GET", "POST"]),
            *self.interaction_routes(),
        ]

    # -- plumbing -----------------------------------------------------------------------
    def _authenticate(self, request: Request, args: dict[str, Any]) -> None:
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else args.get("token")
        if not token:
            raise _SlackError("not_authed")
        if token != self.token:
            raise _SlackError("invalid_auth")
        if self.revoked:
            raise _SlackError("token_revoked")
