"""What every emulator shares: counting, fault injection, the admin (inspection) routes, a lock.

Each provider subclasses `ProviderApp`, adds its routes, and implements `seed()`,
`snapshot()` and `error_response()`. Admin routes live under `/_sandbox/` so they never
collide with a real path:

    GET    /_sandbox/state    what the provider holds (tasks, records, messages)
    GET    /_sandbox/stats    requests per endpoint, 429s served, faults injected
    POST   /_sandbox/reset    back to the seeded world (and the configured faults, rewound)
    GET    /_sandbox/faults   {"seed", "rules", "injected"}
    PUT    /_sandbox/faults   {"seed": n, "rules": [...]} replaces every rule, rewinds the dice
    POST   /_sandbox/faults   {"rules": [...]} appended, or one rule {"kind", ...} armed for
                              `times` requests (default 1)
    DELETE /_sandbox/faults   no more faults

Rules are described in `sandbox.faults`. A "lost_response" lets the request through (the
write is applied) and then drops the connection, the case that makes naive retries write
twice; "reset" and "timeout" drop it without applying anything.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections import Counter
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.faults import Decision, FaultPlan, FaultRule
from sandbox.world import default_world


class ProviderApp:
    """Base of one emulator; `app` is the ASGI application to serve."""

    name: str = "provider"

    def __init__(self, world: dict[str, Any] | None = None, **options: Any) -> None:
        self.world = world or default_world()
        self.options = options
        self.lock = threading.RLock()
        self.requests: Counter[str] = Counter()
        # requests answered with a 2xx, sent or lost on the way: a write whose client went
        # away before its body arrived is in `requests` but was never applied
        self.answered_2xx: Counter[str] = Counter()
        self.throttled = 0
        self.faults = FaultPlan()
        self.seed()
        self.app: ASGIApp = _Faulting(self, Starlette(routes=self._admin_routes() + self.routes()))

    # -- for subclasses -------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        raise NotImplementedError

    def seed(self) -> None:
        """Load `self.world` into fresh in-memory state."""
        raise NotImplementedError

    def snapshot(self) -> dict[str, Any]:
        raise NotImplementedError

    def error_response(
        self,
        status: int,
        retry_after: float | None = None,
        code: str | None = None,
        message: str | None = None,
    ) -> JSONResponse:
        """The provider's own error body for an injected status (and code); subclasses override."""
        headers = {"Retry-After": str(int(retry_after))} if retry_after is not None else {}
        return JSONResponse({"error": f"injected {status}"}, status_code=status, headers=headers)

    # -- shared ---------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the seeded world, zeroed counters and the baseline faults, rewound."""
        with self.lock:
            self.requests.clear()
            self.answered_2xx.clear()
            self.throttled = 0
            self.faults.restore()
            self.seed()

    def configure_faults(
        self,
        rules: Sequence[FaultRule | dict[str, Any]],
        seed: int | None = None,
        *,
        replace: bool = True,
        baseline: bool = False,
    ) -> None:
        """Install fault rules (see sandbox.faults); `baseline` ones survive `reset()`."""
        self.faults.configure(rules, seed, replace=replace, baseline=baseline)

    def arm(
        self,
        kind: str,
        *,
        method: str | None = None,
        path: str = "",
        status: int = 500,
        times: int | None = 1,
        retry_after: float | None = None,
        **params: Any,
    ) -> None:
        """Make the next `times` requests matching method and path fail as `kind`."""
        rule = {"method": method, "path": path, "status": status, "times": times}
        self.faults.configure(
            [{"kind": kind, **rule, "retry_after": retry_after, **params}], replace=False
        )

    def take_fault(self, method: str, path: str) -> dict[str, Any] | None:
        """Roll the fault dice for one request; the fault to inject, if any."""
        decision = self.faults.decide(method, path)
        if decision is None or decision.kind is None:
            return None
        return {
            "kind": decision.kind,
            "status": decision.status,
            "retry_after": decision.retry_after,
            "delay": decision.delay,
            "hold": decision.hold,
        }

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": dict(self.requests),
                "answered_2xx": dict(self.answered_2xx),
                "http_429": self.throttled,
                "faults": self.faults.describe()["injected"],
            }

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
            try:
                if request.method == "DELETE":
                    self.faults.clear()
                elif request.method in ("PUT", "POST"):
                    body = await request.json()
                    replace = request.method == "PUT"
                    if replace or "rules" in body:
                        self.faults.configure(
                            body.get("rules", []), body.get("seed"), replace=replace
                        )
                    else:  # `arm` over HTTP: one-shot unless told otherwise
                        self.faults.configure([{"times": 1, **body}], replace=False)
            except (ValueError, TypeError, KeyError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse(self.faults.describe())

        return [
            Route("/_sandbox/faults", faults, methods=["GET", "PUT", "POST", "DELETE"]),
            Route("/_sandbox/state", state),
            Route("/_sandbox/stats", stats),
            Route("/_sandbox/reset", reset, methods=["POST"]),
        ]


def _counting(provider: ProviderApp, endpoint: str, send: Send) -> Send:
    """`send`, counting the 429s and 2xx answers it carries."""

    async def counting_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            with provider.lock:
                if message["status"] == 429:
                    provider.throttled += 1
                elif message["status"] < 300:
                    provider.answered_2xx[endpoint] += 1
        await send(message)

    return counting_send


class _Faulting:
    """ASGI middleware: counts requests per endpoint and 429s served, and injects faults."""

    def __init__(self, provider: ProviderApp, app: ASGIApp) -> None:
        self.provider = provider
        self.inner = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox/"):
            await self.inner(scope, receive, send)
            return
        provider = self.provider
        method, path = scope["method"], scope["path"]
        endpoint = f"{method} {path}"
        with provider.lock:
            provider.requests[endpoint] += 1

        # The fast path: with no rules, no dice and no extra awaits.
        decision = provider.faults.decide(method, path) if provider.faults.rules else None
        if decision is None:
            await self.inner(scope, receive, _counting(provider, endpoint, send))
            return
        await self._inject(decision, scope, receive, send, endpoint)

    async def _inject(
        self, decision: Decision, scope: Scope, receive: Receive, send: Send, endpoint: str
    ) -> None:
        answer = _counting(self.provider, endpoint, send)
        if decision.delay:
            await asyncio.sleep(decision.delay)
        if decision.kind is None:
            await self.inner(scope, receive, answer)
        elif decision.kind == "error":
            response = self.provider.error_response(
                decision.status, decision.retry_after, decision.code, decision.message
            )
            await response(scope, receive, answer)
        elif decision.kind == "lost_response":
            await self.inner(scope, receive, _counting(self.provider, endpoint, _discard))
            await _drop(send)
        elif decision.kind == "timeout":
            await _until_disconnect(receive, decision.hold)
            await _drop(send)
        else:  # reset
            await _drop(send)


async def _discard(message: Message) -> None:
    """Swallows a response that the client must never see."""


async def _until_disconnect(receive: Receive, hold: float) -> None:
    """Reads the request, then waits (at most `hold` s) for the client to give up."""

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    with suppress(TimeoutError):
        await asyncio.wait_for(disconnected(), hold)


async def _drop(send: Send) -> None:
    """Ends the connection with a TCP reset and no answer at all.

    ASGI has no message for this, so it reaches through uvicorn's `send` (a bound method
    of the request cycle) to the transport. Elsewhere it falls back to a response that
    promises more body than it sends, which clients also see as a broken connection.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"1000")],
            }
        )
        await send({"type": "http.response.body", "body": b"{", "more_body": False})
        return
    if getattr(cycle, "disconnected", False) or transport.is_closing():
        return  # the client already gave up (a timeout it noticed)
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with suppress(OSError):  # linger 0: close() sends RST instead of FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    # Let uvicorn see the connection lost before the app returns, or it answers a 500
    # (into the void) and logs "returned without starting response".
    for _ in range(10):
        if getattr(cycle, "disconnected", True):
            break
        await asyncio.sleep(0)
