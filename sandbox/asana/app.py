"""Emulates the slice of Asana's REST API (v1.0) that meetsync uses, as the asana SDK sees it.

Served under /api/1.0: workspaces, users, projects, sections, custom field settings and
tasks (with the app-specific `external` field and `external:<gid>` lookups), and the
Batch API (`POST /batch`, sandbox.asana.batch). Bodies follow
Asana's conventions: `{"data": …}` envelopes, `opt_fields`, offset pagination, and
`{"errors": [{"message", "help"}]}` with the documented status codes. Two limits apply per
token, as Asana documents them: requests per minute (150 free, 1,500 paid) and 15
concurrent writes, both answered 429 with Retry-After.

Strict where Asana is: a token the workspace never issued is 401 (sandbox.asana.oauth: PATs
and OAuth); the `external` field and `external:<gid>` lookups are "OAuth Required" and
refused to personal access tokens; a text custom field takes at most 1,024 characters;
`next_page` appears only when `limit` is given, with an opaque offset token; a free
workspace (`premium: False`) answers 402 Payment Required to custom fields.

Admin: POST /_sandbox/auth {"action": "revoke"|"restore"|"expire"}: every token unauthorised,
back, or every OAuth access token expired (refresh tokens still work).
Options: requests_per_minute (default 1500), concurrent_writes (default 15), tokens (the
personal access tokens issued), oauth_clients ({client_id: secret}), access_token_ttl,
premium (default True).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.asana.batch import AsanaBatch, Inner
from sandbox.asana.envelope import PREFIX, _page, _select
from sandbox.asana.errors import RATE_LIMITED, AsanaError, error_body
from sandbox.asana.limits import TokenLimiter
from sandbox.asana.tasks import AsanaTasks

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Handler = Callable[[Request], Awaitable[JSONResponse]]


class AsanaSandbox(AsanaTasks, AsanaBatch):
    """One Asana organisation: the world's company, its people, projects and tasks."""

    name = "asana"

    def error_response(
        self,
        status: int,
        retry_after: float | None = None,
        code: str | None = None,
        message: str | None = None,
    ) -> JSONResponse:
        messages = {
            401: "Not Authorized",
            403: "Forbidden",
            404: "Not Found",
            429: RATE_LIMITED,
            400: "Bad Request",
        }
        message = message or messages.get(
            status, "Server Error" if status >= 500 else "Request failed"
        )
        headers = {"Retry-After": str(math.ceil(retry_after))} if retry_after is not None else {}
        return JSONResponse(error_body(status, message), status_code=status, headers=headers)

    # -- request plumbing -------------------------------------------------------------
    def _token_kind(self, request: Request) -> tuple[str, str] | None:
        """The request's token and its kind (PAT or OAuth); None when not authorised."""
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        with self.lock:
            kind = self.auth.kind(token) if token else None
        if kind is None or self.revoked:
            return None
        return token, kind

    def _limiter_for(self, token: str) -> TokenLimiter:
        """The token's limits (the caller holds the lock)."""
        limiter = self.limiters.get(token)
        if limiter is None:
            limiter = self.limiters[token] = TokenLimiter(
                int(self.options.get("requests_per_minute", 1500)),
                int(self.options.get("concurrent_writes", 15)),
            )
        return limiter

    def _endpoint(self, handler: Callable[[Request], Awaitable[Any]], status: int = 200) -> Handler:
        """Auth, the token's limits, `opt_fields`, the data envelope and error bodies."""

        async def endpoint(request: Request) -> JSONResponse:
            authorised = self._token_kind(request)
            if authorised is None:
                return JSONResponse(error_body(401, "Not Authorized"), status_code=401)
            token, request.scope["asana_token"] = authorised
            write = request.method in WRITE_METHODS
            with self.lock:
                limiter = self._limiter_for(token)
                wait = limiter.admit(write)
            if wait is not None:
                return JSONResponse(
                    error_body(429, RATE_LIMITED),
                    status_code=429,
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                )
            try:
                result = await handler(request)
            except AsanaError as exc:
                return JSONResponse(error_body(exc.status, exc.message), status_code=exc.status)
            finally:
                if write:
                    with self.lock:
                        limiter.release()
            if isinstance(result, JSONResponse):
                return result
            return JSONResponse(_select(result, request), status_code=status)

        return endpoint

    # -- routes -----------------------------------------------------------------------
    def _api(self) -> list[tuple[str, Inner, list[str], int]]:
        """The API's endpoints: path, handler, methods, success status."""
        get, post = ["GET"], ["POST"]
        return [
            (f"{PREFIX}/workspaces", self.list_workspaces, get, 200),
            (f"{PREFIX}/users", self.list_users, get, 200),
            (f"{PREFIX}/users/{{user_gid}}", self.get_user, get, 200),
            (f"{PREFIX}/projects", self.list_projects, get, 200),
            (f"{PREFIX}/projects/{{project_gid}}", self.get_project, get, 200),
            (f"{PREFIX}/projects/{{project_gid}}/sections", self.list_sections, get, 200),
            (
                f"{PREFIX}/projects/{{project_gid}}/custom_field_settings",
                self.list_custom_field_settings,
                get,
                200,
            ),
            (f"{PREFIX}/projects/{{project_gid}}/tasks", self.list_tasks, get, 200),
            (f"{PREFIX}/sections/{{section_gid}}", self.get_section, get, 200),
            (f"{PREFIX}/sections/{{section_gid}}/tasks", self.list_tasks, get, 200),
            (f"{PREFIX}/sections/{{section_gid}}/addTask", self.add_task_to_section, post, 200),
            (f"{PREFIX}/tasks", self.list_tasks, get, 200),
            (f"{PREFIX}/tasks", self.create_task, post, 201),
            (f"{PREFIX}/tasks/{{task_gid}}", self.get_task, get, 200),
            (f"{PREFIX}/tasks/{{task_gid}}", self.update_task, ["PUT"], 200),
            (f"{PREFIX}/tasks/{{task_gid}}", self.delete_task, ["DELETE"], 200),
            (f"{PREFIX}/tasks/{{task_gid}}/addFollowers", self.add_followers, post, 200),
            (f"{PREFIX}/tasks/{{task_gid}}/removeFollowers", self.remove_followers, post, 200),
        ]

    def routes(self) -> list[BaseRoute]:
        api = self._api()
        # what a batch action may call: the same handlers, without the per-request limits
        self.batchable = [
            (Route(path, handler, methods=methods), handler, status)
            for path, handler, methods, status in api
        ]
        return [
            Route("/_sandbox/auth", self._auth, methods=["POST"]),
            Route("/-/oauth_authorize", self._oauth_authorize, methods=["GET"]),
            Route("/-/oauth_token", self._oauth_token, methods=["POST"]),
            Route(f"{PREFIX}/batch", self.batch, methods=["POST"]),
            *(
                Route(path, self._endpoint(handler, status=status), methods=methods)
                for path, handler, methods, status in api
            ),
            Route(
                f"{PREFIX}/{{rest:path}}",
                self._endpoint(self.no_route),
                methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            ),
        ]

    async def _auth(self, request: Request) -> JSONResponse:
        action = (await request.json()).get("action")
        if action not in {"revoke", "restore", "expire"}:
            return JSONResponse({"error": f"unknown action {action!r}"}, status_code=400)
        with self.lock:
            if action == "expire":
                self.auth.expire()
            else:
                self.revoked = action == "revoke"
        return JSONResponse({"ok": True, "revoked": self.revoked})

    async def _oauth_authorize(self, request: Request) -> Response:
        with self.lock:
            return self.auth.authorize(request)

    async def _oauth_token(self, request: Request) -> Response:
        body = await request.body()
        with self.lock:
            return self.auth.token(body, self.users[self.me])

    async def no_route(self, request: Request) -> Any:
        raise AsanaError(404, "No matching route for request")

    async def list_workspaces(self, request: Request) -> Any:
        return _page(request, [dict(self.workspace)])

    async def list_users(self, request: Request) -> Any:
        self._workspace_param(request, required=False)
        with self.lock:
            return _page(request, [self._user(u) for u in self.users.values()])

    async def get_user(self, request: Request) -> Any:
        ref = request.path_params["user_gid"]
        with self.lock:
            try:
                gid = self._find_user(ref, "user")
            except AsanaError as exc:
                raise AsanaError(404, f"user: Unknown object: {ref}") from exc
            return {"data": self._user(self.users[gid])}

    async def list_projects(self, request: Request) -> Any:
        self._workspace_param(request, required=False)
        with self.lock:
            return _page(request, [self._project(p) for p in self.projects.values()])

    async def get_project(self, request: Request) -> Any:
        with self.lock:
            project = self._find(self.projects, "project", request.path_params["project_gid"])
            return {"data": self._project(project)}

    async def list_sections(self, request: Request) -> Any:
        with self.lock:
            project = self._find(self.projects, "project", request.path_params["project_gid"])
            return _page(request, [self._section(self.sections[s]) for s in project["sections"]])

    async def get_section(self, request: Request) -> Any:
        with self.lock:
            section = self._find(self.sections, "section", request.path_params["section_gid"])
            return {"data": self._section(section)}

    async def list_custom_field_settings(self, request: Request) -> Any:
        with self.lock:
            project = self._find(self.projects, "project", request.path_params["project_gid"])
            self._premium("Custom fields")
            settings = [
                {
                    "gid": f"{project['gid']}{i}",
                    "resource_type": "custom_field_setting",
                    "is_important": True,
                    "project": self._compact(project, "project"),
                    "parent": self._compact(project, "project"),
                    "custom_field": self._custom_field(gid),
                }
                for i, gid in enumerate(project["custom_fields"])
            ]
            return _page(request, settings)
