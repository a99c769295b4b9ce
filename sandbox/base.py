"""What every emulator shares: counting, the admin (inspection) routes, and a lock.

Each provider subclasses `ProviderApp`, adds its routes, and implements `snapshot()` and
`reset()`. Admin routes live under `/_sandbox/` so they never collide with a real path:

    GET  /_sandbox/state     what the provider holds (tasks, records, messages)
    GET  /_sandbox/stats     requests per endpoint, 429s served
    POST /_sandbox/reset     back to the seeded world
    POST /_sandbox/faults    arm a fault: {"kind": "error"|"lost_response", "method", "path",
                             "status", "times", "retry_after"}; DELETE clears them

A "lost_response" fault lets the request through (the write is applied) and then breaks
the connection mid-response, the case that makes naive retries write twice.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.world import default_world


class ProviderApp:
    """Base of one emulator; `app` is the ASGI application to serve."""

    name: str = "provider"

    def __init__(self, world: dict[str, Any] | None = None, **options: Any) -> None:
        self.world = world or default_world()
        self.options = options
        self.lock = threading.RLock()
        self.requests: Counter[str] = Counter()
        self.throttled = 0
        self.faults: list[dict[str, Any]] = []
        self.seed()
        self.app: ASGIApp = _Counting(self, Starlette(routes=self._admin_routes() + self.routes()))

    # -- for subclasses -------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        raise NotImplementedError

    def seed(self) -> None:
        """Load `self.world` into fresh in-memory state."""
        raise NotImplementedError

    def snapshot(self) -> dict[str, Any]:
        raise NotImplementedError

    def error_response(self, status: int, retry_after: float | None = None) -> JSONResponse:
        """The provider's own error body for an injected status; subclasses override."""
        headers = {"Retry-After": str(int(retry_after))} if retry_after is not None else {}
        return JSONResponse({"error": f"injected {status}"}, status_code=status, headers=headers)

    # -- shared ---------------------------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.throttled = 0
            self.seed()

    def arm(
        self,
        kind: str,
        *,
        method: str | None = None,
        path: str = "",
        status: int = 500,
        times: int = 1,
        retry_after: float | None = None,
    ) -> None:
        """Make the next `times` requests matching method and path prefix fail as `kind`."""
        if kind not in {"error", "lost_response"}:
            raise ValueError(f"unknown fault kind {kind!r}")
        with self.lock:
            self.faults.append(
                {"kind": kind, "method": method, "path": path, "status": status,
                 "times": times, "retry_after": retry_after}
            )

    def take_fault(self, method: str, path: str) -> dict[str, Any] | None:
        with self.lock:
            for fault in self.faults:
                if (fault["method"] in (None, method)) and path.startswith(fault["path"]):
                    fault["times"] -= 1
                    if fault["times"] <= 0:
                        self.faults.remove(fault)
                    return dict(fault)
        return None

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {"requests": dict(self.requests), "http_429": self.throttled}

    def _admin_routes(self) -> list[BaseRoute]:
        async def state(_: Request) -> JSONResponse:
            with self.lock:
                return JSONResponse(self.snapshot())

        async def stats(_: Request) -> JSONResponse:
            return JSONResponse(self.stats())

        async def reset(_: Request) -> JSONResponse:
            self.reset()
            return JSONResponse({"ok": True})

        async def faults(request: Request) -> JSONResponse:
            if request.method == "DELETE":
                with self.lock:
                    self.faults.clear()
            else:
                body = await request.json()
                self.arm(body.pop("kind"), **body)
            with self.lock:
                return JSONResponse({"faults": list(self.faults)})

        return [
            Route("/_sandbox/faults", faults, methods=["GET", "POST", "DELETE"]),
            Route("/_sandbox/state", state),
            Route("/_sandbox/stats", stats),
            Route("/_sandbox/reset", reset, methods=["POST"]),
        ]


class _Counting:
    """ASGI middleware counting requests per endpoint and the 429s served."""

    def __init__(self, provider: ProviderApp, app: ASGIApp) -> None:
        self.provider = provider
        self.inner = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox/"):
            await self.inner(scope, receive, send)
            return
        provider = self.provider
        with provider.lock:
            provider.requests[f"{scope['method']} {scope['path']}"] += 1
        fault = provider.take_fault(scope["method"], scope["path"])
        if fault and fault["kind"] == "error":
            response = provider.error_response(fault["status"], fault["retry_after"])
            if fault["status"] == 429:
                with provider.lock:
                    provider.throttled += 1
            await response(scope, receive, send)
            return
        if fault and fault["kind"] == "lost_response":
            await self.inner(scope, receive, _discard)
            # Promise more body than we send: the client sees a broken connection.
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", b"1000")]})
            await send({"type": "http.response.body", "body": b"{", "more_body": False})
            return

        async def counting_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] == 429:
                with provider.lock:
                    provider.throttled += 1
            await send(message)

        await self.inner(scope, receive, counting_send)


async def _discard(message: Message) -> None:
    """Swallows a response that the client must never see."""
