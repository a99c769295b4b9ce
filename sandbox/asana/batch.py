"""Asana's Batch API: `POST /batch` runs up to ten actions, each as its own request would.

As Asana documents it: the body is `{"data": {"actions": [{"method", "relative_path",
"data", "options"}]}}`; no actions, more than ten, or a nested batch is 400. Every action
counts against the token's limits as a request of its own, and when any would exceed them
the whole batch is refused with one 429 (none of its actions runs). Otherwise the answer
is 200 with one `{"status_code", "headers", "body"}` per action, in the actions' order,
whether each succeeded or not. `data` is a GET's query or a write's `data` envelope;
`options` carries `limit`, `offset` and `fields` (as `opt_fields`).

Fault rules (sandbox.faults) reach the actions too, each action rolled as the request it
stands for: an `error` answers that action alone, a `throttle` refuses the whole batch
(as Asana's limits do), latency adds up; a connection fault (`reset`, `timeout`,
`lost_response`) is the batch request's own, rolled when it arrived.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Match, Route
from starlette.types import Message

from sandbox.asana.envelope import PREFIX, _select
from sandbox.asana.errors import RATE_LIMITED, AsanaError, error_body
from sandbox.base import ProviderApp
from sandbox.faults import Decision

BATCH_MAX = 10
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Inner = Callable[[Request], Awaitable[Any]]


class Action:
    """One batch action, parsed: what its own request would have been."""

    def __init__(self, raw: Any) -> None:
        if not isinstance(raw, dict):
            raise AsanaError(400, "actions: Each action must be an object")
        method, path = raw.get("method"), raw.get("relative_path")
        if not isinstance(method, str) or not isinstance(path, str) or not path.startswith("/"):
            raise AsanaError(400, "actions: Each action needs a method and a relative_path")
        self.method = method.upper()
        self.path = path
        self.data = raw.get("data") or {}
        self.options = raw.get("options") or {}

    @property
    def write(self) -> bool:
        return self.method in WRITE_METHODS

    def scope(self, token_kind: str) -> dict[str, Any]:
        """The ASGI scope of the request this action stands for."""
        query = dict(self.data) if not self.write else {}
        for name in ("limit", "offset"):
            if name in self.options:
                query[name] = self.options[name]
        if self.options.get("fields"):
            query["opt_fields"] = ",".join(self.options["fields"])
        return {
            "type": "http",
            "method": self.method,
            "path": PREFIX + self.path,
            "root_path": "",
            "query_string": urlencode(query, doseq=True).encode(),
            "headers": [(b"content-type", b"application/json")],
            "asana_token": token_kind,
        }

    def body(self) -> bytes:
        return json.dumps({"data": self.data}).encode() if self.write else b""


class AsanaBatch(ProviderApp):
    """`POST /batch` over the app's own handlers (`batchable`: route, handler, status)."""

    batchable: list[tuple[Route, Inner, int]]

    def _limiter_for(self, token: str) -> Any:
        raise NotImplementedError

    def _token_kind(self, request: Request) -> tuple[str, str] | None:
        raise NotImplementedError

    async def batch(self, request: Request) -> JSONResponse:
        authorised = self._token_kind(request)
        if authorised is None:
            return JSONResponse(error_body(401, "Not Authorized"), status_code=401)
        token, kind = authorised
        try:
            actions = await _actions(request)
        except AsanaError as exc:
            return JSONResponse(error_body(exc.status, exc.message), status_code=exc.status)
        faults = [self._fault(action) for action in actions]
        throttled = [f for f in faults if f is not None and f.status == 429]
        if throttled:
            return self.error_response(429, throttled[0].retry_after or 1.0)
        delay = sum(f.delay for f in faults if f is not None)
        if delay:
            await asyncio.sleep(delay)
        writes = sum(1 for action in actions if action.write)
        with self.lock:
            limiter = self._limiter_for(token)
            wait = limiter.admit_many(len(actions), writes)
        if wait is not None:  # one action over a limit refuses them all
            return JSONResponse(
                error_body(429, RATE_LIMITED),
                status_code=429,
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        try:
            results = [
                await self._run(action, kind, fault)
                for action, fault in zip(actions, faults, strict=True)
            ]
        finally:
            with self.lock:
                for _ in range(writes):
                    limiter.release()
        return JSONResponse({"data": results})

    def _fault(self, action: Action) -> Decision | None:
        """The fault rules' dice for one action, as for the request it stands for."""
        if not self.faults.rules:
            return None
        return self.faults.decide(action.method, PREFIX + action.path)

    async def _run(self, action: Action, kind: str, fault: Decision | None) -> dict[str, Any]:
        if fault is not None and fault.kind == "error":
            answer = self.error_response(fault.status, fault.retry_after, fault.code, fault.message)
            return _result(fault.status, json.loads(bytes(answer.body)))
        if action.path.rstrip("/") == "/batch":
            return _result(400, error_body(400, "Nested calls to the batch API are not allowed"))
        scope = action.scope(kind)
        for route, handler, status in self.batchable:
            match, child = route.matches(scope)
            if match is not Match.FULL:
                continue
            scope.update(child)
            request = Request(scope, _receiver(action.body()))
            try:
                answer = await handler(request)
            except AsanaError as exc:
                return _result(exc.status, error_body(exc.status, exc.message))
            if isinstance(answer, JSONResponse):
                return _result(answer.status_code, json.loads(bytes(answer.body)))
            selected = _select(answer, request)
            created = selected.get("data") if status == 201 else None
            headers = {"location": f"/{action.path.strip('/')}/{created['gid']}"} if created else {}
            return _result(status, selected, headers)
        return _result(404, error_body(404, "No matching route for request"))


async def _actions(request: Request) -> list[Action]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise AsanaError(400, "Could not parse request data, invalid JSON") from exc
    data = body.get("data") if isinstance(body, dict) else None
    actions = data.get("actions") if isinstance(data, dict) else None
    if not isinstance(actions, list) or not actions:
        raise AsanaError(400, "actions: Missing input")
    if len(actions) > BATCH_MAX:
        raise AsanaError(400, f"actions: A batch request may contain at most {BATCH_MAX} actions")
    return [Action(raw) for raw in actions]


def _result(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    return {"status_code": status, "headers": headers or {}, "body": body}


def _receiver(body: bytes) -> Callable[[], Awaitable[Message]]:
    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
