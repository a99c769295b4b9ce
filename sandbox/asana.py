"""Emulates the slice of Asana's REST API (v1.0) that meetsync uses, as the asana SDK sees it.

Served under /api/1.0: workspaces, users, projects, sections, custom field settings and
tasks (with the app-specific `external` field and `external:<gid>` lookups). Bodies follow
Asana's conventions: `{"data": …}` envelopes, `opt_fields`, offset pagination, and
`{"errors": [{"message", "help"}]}` with the documented status codes. Two limits apply per
token, as Asana documents them: requests per minute (150 free, 1,500 paid) and 15
concurrent writes, both answered 429 with Retry-After.

Admin: POST /_sandbox/auth {"action": "revoke"|"restore"} makes every token unauthorised.
Options: requests_per_minute (default 1500), concurrent_writes (default 15).
"""

from __future__ import annotations

import math
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from itertools import count
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from sandbox.base import ProviderApp

PREFIX = "/api/1.0"
HELP = (
    "For more information on API status codes and how to handle them, "
    "read the docs on errors: https://developers.asana.com/docs/errors"
)
RATE_LIMITED = (
    "You've made too many requests and hit a rate limit. "
    "Please retry after the given amount of time."
)
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PAGE_MAX = 100
# Seeded on every project, so mappings have an enum and a text field to target.
CUSTOM_FIELDS: list[dict[str, Any]] = [
    {"name": "Priority", "type": "enum", "options": ["High", "Medium", "Low"]},
    {"name": "Meeting link", "type": "text"},
]
OPTION_COLORS = ["red", "orange", "yellow-green", "green", "blue"]

# Asana's rich text for task notes (developers.asana.com/docs/rich-text): no <p>, <br>, <div>.
RICH_TEXT_TAGS = frozenset(
    {
        "body",
        "strong",
        "em",
        "u",
        "s",
        "a",
        "code",
        "pre",
        "blockquote",
        "ul",
        "ol",
        "li",
        "h1",
        "h2",
        "hr",
        "img",
        "table",
        "tr",
        "td",
    }
)
RICH_TEXT_ATTRIBUTES = {
    "a": frozenset({"href"}),
    "img": frozenset({"src", "alt", "style"}),
    "td": frozenset({"width"}),
}

Handler = Callable[[Request], Awaitable[JSONResponse]]


class AsanaError(Exception):
    """Raised inside a handler; rendered as Asana's error body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class TokenLimiter:
    """Asana's two limits for one token: a per-minute request budget and concurrent writes."""

    def __init__(
        self,
        per_minute: int,
        concurrent_writes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = float(per_minute)
        self.refill = per_minute / 60.0
        self.tokens = self.capacity
        self.max_writes = concurrent_writes
        self.writes = 0
        self.clock = clock
        self.stamp = clock()

    def admit(self, write: bool) -> float | None:
        """None when the request may proceed; otherwise the seconds until it could."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.refill)
        self.stamp = now
        if write and self.writes >= self.max_writes:
            return 1.0  # a write slot frees as soon as any in-flight write ends
        if self.tokens < 1.0:
            return (1.0 - self.tokens) / self.refill
        self.tokens -= 1.0
        if write:
            self.writes += 1
        return None

    def release(self) -> None:
        """An admitted write has finished."""
        self.writes = max(0, self.writes - 1)


def error_body(status: int, message: str) -> dict[str, Any]:
    """Asana's error envelope; server errors carry a support phrase."""
    error: dict[str, Any] = {"message": message, "help": HELP}
    if status >= 500:
        error["phrase"] = "6 sad squid snuggle softly"
    return {"errors": [error]}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _plain_text(html: Any) -> str:
    """Asana derives `notes` from `html_notes`: XML in <body>, from its rich-text tag set."""
    if not isinstance(html, str):
        raise AsanaError(400, "html_notes: Must be a string")
    try:
        root = ElementTree.fromstring(html)
    except ElementTree.ParseError as exc:
        raise AsanaError(400, "html_notes: XML is invalid") from exc
    if root.tag != "body":
        raise AsanaError(400, "html_notes: The root element must be <body>")
    for element in root.iter():
        if element.tag not in RICH_TEXT_TAGS:
            raise AsanaError(400, f"html_notes: Tag <{element.tag}> is not supported")
        allowed = RICH_TEXT_ATTRIBUTES.get(element.tag, frozenset())
        for name in element.attrib:
            if name not in allowed and not name.startswith("data-asana-"):
                raise AsanaError(
                    400, f"html_notes: Attribute {name} is not allowed on <{element.tag}>"
                )
    return "".join(root.itertext())


def _permalink(project: str, task: str) -> str:
    return f"https://app.asana.com/0/{project}/{task}"


def _html(text: str) -> str:
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f"<body>{escaped}</body>"


def _valid_date(value: Any, field: str) -> str | None:
    if value is None:
        return None
    try:
        date.fromisoformat(value)
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError(value)
    except (TypeError, ValueError) as exc:
        raise AsanaError(400, f"{field}: Invalid date: {value}") from exc
    return value


class AsanaSandbox(ProviderApp):
    """One Asana organisation: the world's company, its people, projects and tasks."""

    name = "asana"

    # -- state ----------------------------------------------------------------------
    def seed(self) -> None:
        self._ids = count(1_200_000_000_000_001)
        company = self.world["company"]
        self.workspace = {"gid": self._gid(), "name": company["name"], "resource_type": "workspace"}
        self.users: dict[str, dict[str, Any]] = {}
        for person in self.world["internal"]:
            gid = self._gid()
            self.users[gid] = {"gid": gid, "name": person["name"], "email": person["email"]}
        self.me = next(iter(self.users))
        self.custom_fields: dict[str, dict[str, Any]] = {}
        for spec in CUSTOM_FIELDS:
            gid = self._gid()
            options = [
                {
                    "gid": self._gid(),
                    "resource_type": "enum_option",
                    "name": name,
                    "enabled": True,
                    "color": OPTION_COLORS[i % len(OPTION_COLORS)],
                }
                for i, name in enumerate(spec.get("options", []))
            ]
            self.custom_fields[gid] = {
                "gid": gid,
                "name": spec["name"],
                "type": spec["type"],
                "enum_options": options,
            }
        self.projects: dict[str, dict[str, Any]] = {}
        self.sections: dict[str, dict[str, Any]] = {}
        for spec in self.world["asana_projects"]:
            gid = self._gid()
            section_gids = []
            for name in spec["sections"]:
                section_gid = self._gid()
                self.sections[section_gid] = {"gid": section_gid, "name": name, "project": gid}
                section_gids.append(section_gid)
            self.projects[gid] = {
                "gid": gid,
                "name": spec["name"],
                "sections": section_gids,
                "custom_fields": list(self.custom_fields),
                "created_at": _now(),
            }
        self.tasks: dict[str, dict[str, Any]] = {}
        self.external: dict[str, str] = {}  # external gid → task gid (one app, one workspace)
        self.revoked = False
        self.limiters: dict[str, TokenLimiter] = {}

    def _gid(self) -> str:
        return str(next(self._ids))

    def snapshot(self) -> dict[str, Any]:
        return {
            "workspaces": [dict(self.workspace)],
            "users": [self._user(u) for u in self.users.values()],
            "projects": [
                {
                    **self._compact(p, "project"),
                    "sections": [self._compact(self.sections[s], "section") for s in p["sections"]],
                    "custom_fields": [self.custom_fields[c]["name"] for c in p["custom_fields"]],
                }
                for p in self.projects.values()
            ],
            "tasks": [self._task(t) for t in self.tasks.values()],
        }

    def error_response(self, status: int, retry_after: float | None = None) -> JSONResponse:
        messages = {
            401: "Not Authorized",
            403: "Forbidden",
            404: "Not Found",
            429: RATE_LIMITED,
            400: "Bad Request",
        }
        message = messages.get(status, "Server Error" if status >= 500 else "Request failed")
        headers = {"Retry-After": str(math.ceil(retry_after))} if retry_after is not None else {}
        return JSONResponse(error_body(status, message), status_code=status, headers=headers)

    # -- representations ------------------------------------------------------------
    @staticmethod
    def _compact(obj: dict[str, Any], kind: str) -> dict[str, Any]:
        return {"gid": obj["gid"], "resource_type": kind, "name": obj["name"]}

    def _user(self, user: dict[str, Any]) -> dict[str, Any]:
        return {
            **self._compact(user, "user"),
            "email": user["email"],
            "photo": None,
            "workspaces": [dict(self.workspace)],
        }

    def _custom_field(
        self, gid: str, value: Any = None, with_value: bool = False
    ) -> dict[str, Any]:
        field = self.custom_fields[gid]
        out: dict[str, Any] = {
            **self._compact(field, "custom_field"),
            "type": field["type"],
            "resource_subtype": field["type"],
            "representation_type": field["type"],
            "enabled": True,
            "is_formula_field": False,
            "is_value_read_only": False,
            "is_global_to_workspace": True,
            "has_notifications_enabled": True,
            "privacy_setting": "public_with_guests",
            "created_by": None,
        }
        if field["type"] == "enum":
            out["enum_options"] = [dict(o) for o in field["enum_options"]]
        if with_value:
            if field["type"] == "enum":
                option = next((o for o in field["enum_options"] if o["gid"] == value), None)
                out["enum_value"] = dict(option) if option else None
                out["display_value"] = option["name"] if option else None
            else:
                out["text_value"] = value
                out["display_value"] = value
        return out

    def _task(self, task: dict[str, Any]) -> dict[str, Any]:
        assignee = self.users.get(task["assignee"] or "")
        projects = list(dict.fromkeys(m["project"] for m in task["memberships"]))
        out: dict[str, Any] = {
            "gid": task["gid"],
            "resource_type": "task",
            "resource_subtype": "default_task",
            "name": task["name"],
            "notes": task["notes"],
            "html_notes": task["html_notes"],
            "completed": task["completed"],
            "completed_at": task["completed_at"],
            "completed_by": None,
            "assigned_by": None,
            "assignee": self._compact(assignee, "user") if assignee else None,
            "assignee_status": "upcoming",
            "assignee_section": None,
            "due_on": task["due_on"],
            "due_at": None,
            "start_on": None,
            "start_at": None,
            "created_at": task["created_at"],
            "modified_at": task["modified_at"],
            "followers": [self._compact(self.users[u], "user") for u in task["followers"]],
            "memberships": [
                {
                    "project": self._compact(self.projects[m["project"]], "project"),
                    "section": self._compact(self.sections[m["section"]], "section"),
                }
                for m in task["memberships"]
            ],
            "projects": [self._compact(self.projects[p], "project") for p in projects],
            "workspace": dict(self.workspace),
            "custom_fields": [
                self._custom_field(gid, task["custom_fields"].get(gid), with_value=True)
                for gid in self._fields_on(task)
            ],
            "tags": [],
            "parent": None,
            "dependencies": [],
            "dependents": [],
            "liked": False,
            "likes": [],
            "num_likes": 0,
            "hearted": False,
            "hearts": [],
            "num_hearts": 0,
            "num_subtasks": 0,
            "is_rendered_as_separator": False,
            "permalink_url": _permalink(projects[0] if projects else "0", task["gid"]),
        }
        if task["external"] is not None:
            out["external"] = dict(task["external"])
        return out

    def _fields_on(self, task: dict[str, Any]) -> list[str]:
        fields: dict[str, None] = {}
        for membership in task["memberships"]:
            fields.update(dict.fromkeys(self.projects[membership["project"]]["custom_fields"]))
        return list(fields)

    # -- lookups --------------------------------------------------------------------
    def _find_task(self, ref: str) -> dict[str, Any]:
        if ref.startswith("external:"):
            gid = self.external.get(ref.removeprefix("external:"))
            if gid is None:
                raise AsanaError(404, f"task: Unknown object: {ref}")
            return self.tasks[gid]
        if not ref.isdigit():
            raise AsanaError(400, f"task: Not a valid gid: {ref}")
        if ref not in self.tasks:
            raise AsanaError(404, f"task: Unknown object: {ref}")
        return self.tasks[ref]

    def _find(self, table: dict[str, dict[str, Any]], kind: str, ref: Any) -> dict[str, Any]:
        if not isinstance(ref, str) or not ref.isdigit():
            raise AsanaError(400, f"{kind}: Not a valid gid: {ref}")
        if ref not in table:
            raise AsanaError(404, f"{kind}: Unknown object: {ref}")
        return table[ref]

    def _find_user(self, ref: Any, field: str) -> str:
        """A user by gid, email or "me", as Asana accepts anywhere a user is expected."""
        if ref == "me":
            return self.me
        if isinstance(ref, str):
            if ref in self.users:
                return ref
            for gid, user in self.users.items():
                if user["email"].lower() == ref.lower():
                    return gid
        raise AsanaError(400, f"{field}: Not a recognized ID: {ref}")

    def _workspace_param(self, request: Request, required: bool = True) -> None:
        gid = request.query_params.get("workspace")
        if gid is None:
            if required:
                raise AsanaError(400, "workspace: Missing input")
            return
        if gid != self.workspace["gid"]:
            raise AsanaError(404, f"workspace: Unknown object: {gid}")

    # -- request plumbing -------------------------------------------------------------
    def _endpoint(self, handler: Callable[[Request], Awaitable[Any]], status: int = 200) -> Handler:
        """Auth, the token's limits, `opt_fields`, the data envelope and error bodies."""

        async def endpoint(request: Request) -> JSONResponse:
            auth = request.headers.get("authorization", "")
            token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
            if not token or self.revoked:
                return JSONResponse(error_body(401, "Not Authorized"), status_code=401)
            write = request.method in WRITE_METHODS
            with self.lock:
                limiter = self.limiters.get(token)
                if limiter is None:
                    limiter = self.limiters[token] = TokenLimiter(
                        int(self.options.get("requests_per_minute", 1500)),
                        int(self.options.get("concurrent_writes", 15)),
                    )
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

    async def _data(self, request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError as exc:
            raise AsanaError(400, "Could not parse request data, invalid JSON") from exc
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise AsanaError(400, "data: Missing input")
        return data

    # -- routes -----------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        e = self._endpoint
        return [
            Route("/_sandbox/auth", self._auth, methods=["POST"]),
            Route(f"{PREFIX}/workspaces", e(self.list_workspaces)),
            Route(f"{PREFIX}/users", e(self.list_users)),
            Route(f"{PREFIX}/users/{{user_gid}}", e(self.get_user)),
            Route(f"{PREFIX}/projects", e(self.list_projects)),
            Route(f"{PREFIX}/projects/{{project_gid}}", e(self.get_project)),
            Route(f"{PREFIX}/projects/{{project_gid}}/sections", e(self.list_sections)),
            Route(
                f"{PREFIX}/projects/{{project_gid}}/custom_field_settings",
                e(self.list_custom_field_settings),
            ),
            Route(f"{PREFIX}/projects/{{project_gid}}/tasks", e(self.list_tasks)),
            Route(f"{PREFIX}/sections/{{section_gid}}", e(self.get_section)),
            Route(f"{PREFIX}/sections/{{section_gid}}/tasks", e(self.list_tasks)),
            Route(
                f"{PREFIX}/sections/{{section_gid}}/addTask",
                e(self.add_task_to_section),
                methods=["POST"],
            ),
            Route(f"{PREFIX}/tasks", e(self.list_tasks)),
            Route(f"{PREFIX}/tasks", e(self.create_task, status=201), methods=["POST"]),
            Route(f"{PREFIX}/tasks/{{task_gid}}", e(self.get_task)),
            Route(f"{PREFIX}/tasks/{{task_gid}}", e(self.update_task), methods=["PUT"]),
            Route(f"{PREFIX}/tasks/{{task_gid}}", e(self.delete_task), methods=["DELETE"]),
            Route(
                f"{PREFIX}/tasks/{{task_gid}}/addFollowers", e(self.add_followers), methods=["POST"]
            ),
            Route(
                f"{PREFIX}/tasks/{{task_gid}}/removeFollowers",
                e(self.remove_followers),
                methods=["POST"],
            ),
            Route(
                f"{PREFIX}/{{rest:path}}",
                e(self.no_route),
                methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            ),
        ]

    async def _auth(self, request: Request) -> JSONResponse:
        action = (await request.json()).get("action")
        if action not in {"revoke", "restore"}:
            return JSONResponse({"error": f"unknown action {action!r}"}, status_code=400)
        with self.lock:
            self.revoked = action == "revoke"
        return JSONResponse({"ok": True, "revoked": self.revoked})

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

    def _project(self, project: dict[str, Any]) -> dict[str, Any]:
        return {
            **self._compact(project, "project"),
            "archived": False,
            "created_at": project["created_at"],
            "workspace": dict(self.workspace),
            "permalink_url": f"https://app.asana.com/0/{project['gid']}/{project['gid']}",
        }

    async def get_project(self, request: Request) -> Any:
        with self.lock:
            project = self._find(self.projects, "project", request.path_params["project_gid"])
            return {"data": self._project(project)}

    async def list_sections(self, request: Request) -> Any:
        with self.lock:
            project = self._find(self.projects, "project", request.path_params["project_gid"])
            return _page(request, [self._section(self.sections[s]) for s in project["sections"]])

    def _section(self, section: dict[str, Any]) -> dict[str, Any]:
        return {
            **self._compact(section, "section"),
            "project": self._compact(self.projects[section["project"]], "project"),
        }

    async def get_section(self, request: Request) -> Any:
        with self.lock:
            section = self._find(self.sections, "section", request.path_params["section_gid"])
            return {"data": self._section(section)}

    async def list_custom_field_settings(self, request: Request) -> Any:
        with self.lock:
            project = self._find(self.projects, "project", request.path_params["project_gid"])
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

    async def list_tasks(self, request: Request) -> Any:
        query = request.query_params
        project = request.path_params.get("project_gid") or query.get("project")
        section = request.path_params.get("section_gid") or query.get("section")
        assignee = query.get("assignee")
        with self.lock:
            if project:
                self._find(self.projects, "project", project)
                keep = lambda t: any(m["project"] == project for m in t["memberships"])  # noqa: E731
            elif section:
                self._find(self.sections, "section", section)
                keep = lambda t: any(m["section"] == section for m in t["memberships"])  # noqa: E731
            elif assignee and query.get("workspace"):
                self._workspace_param(request)
                user = self._find_user(assignee, "assignee")
                keep = lambda t: t["assignee"] == user  # noqa: E731
            else:
                raise AsanaError(
                    400,
                    "Must specify exactly one of project, tag, section, "
                    "user task list, or assignee + workspace",
                )
            found = [t for t in self.tasks.values() if keep(t)]
            if query.get("opt_fields"):
                return _page(request, [self._task(t) for t in found])
            return _page(
                request,
                [
                    {
                        "gid": t["gid"],
                        "resource_type": "task",
                        "name": t["name"],
                        "resource_subtype": "default_task",
                    }
                    for t in found
                ],
            )

    async def get_task(self, request: Request) -> Any:
        with self.lock:
            return {"data": self._task(self._find_task(request.path_params["task_gid"]))}

    async def create_task(self, request: Request) -> Any:
        data = await self._data(request)
        with self.lock:
            memberships = self._memberships(data)
            workspace = data.get("workspace")
            if workspace is not None and workspace != self.workspace["gid"]:
                raise AsanaError(404, f"workspace: Unknown object: {workspace}")
            if not memberships and workspace is None:
                raise AsanaError(400, "You should specify one of workspace, parent, projects")
            stamp = _now()
            task: dict[str, Any] = {
                "gid": "",
                "name": "",
                "notes": "",
                "html_notes": "<body></body>",
                "completed": False,
                "completed_at": None,
                "assignee": None,
                "due_on": None,
                "created_at": stamp,
                "modified_at": stamp,
                "followers": [],
                "memberships": memberships,
                "custom_fields": {},
                "external": None,
            }
            followers = data.get("followers") or []
            if not isinstance(followers, list):
                raise AsanaError(400, "followers: Must be an array")
            task["followers"] = [self._find_user(f, "followers") for f in followers]
            self._write(task, data)
            task["gid"] = self._gid()
            self.tasks[task["gid"]] = task
            if task["external"] and task["external"].get("gid"):
                self.external[task["external"]["gid"]] = task["gid"]
            return {"data": self._task(task)}

    def _memberships(self, data: dict[str, Any]) -> list[dict[str, str]]:
        """Where a new task lives: `memberships` pin a section, `projects` use the first one."""
        out: list[dict[str, str]] = []
        for i, membership in enumerate(data.get("memberships") or []):
            project = self._find(
                self.projects, f"memberships: [{i}]: project", membership.get("project")
            )
            section_gid = membership.get("section") or project["sections"][0]
            section = self._find(self.sections, f"memberships: [{i}]: section", section_gid)
            if section["project"] != project["gid"]:
                raise AsanaError(
                    400,
                    f"memberships: [{i}]: section {section_gid} is not in project {project['gid']}",
                )
            out.append({"project": project["gid"], "section": section["gid"]})
        for i, gid in enumerate(data.get("projects") or []):
            if not isinstance(gid, str) or gid not in self.projects:
                raise AsanaError(400, f"projects: [{i}]: Not a recognized ID: {gid}")
            if all(m["project"] != gid for m in out):
                out.append({"project": gid, "section": self.projects[gid]["sections"][0]})
        return out

    def _write(self, task: dict[str, Any], data: dict[str, Any]) -> None:
        """Validate every writable field first, then apply them all (no partial writes)."""
        changes: dict[str, Any] = {}
        if "name" in data:
            if not isinstance(data["name"], str):
                raise AsanaError(400, "name: Must be a string")
            changes["name"] = data["name"]
        if "html_notes" in data:
            changes["notes"] = _plain_text(data["html_notes"])
            changes["html_notes"] = data["html_notes"]
        elif "notes" in data:
            if not isinstance(data["notes"], str):
                raise AsanaError(400, "notes: Must be a string")
            changes["notes"] = data["notes"]
            changes["html_notes"] = _html(data["notes"])
        if "assignee" in data:
            ref = data["assignee"]
            changes["assignee"] = None if ref is None else self._find_user(ref, "assignee")
        if data.get("due_on") is not None and data.get("due_at") is not None:
            raise AsanaError(400, "You may only provide one of due_on or due_at!")
        if "due_on" in data:
            changes["due_on"] = _valid_date(data["due_on"], "due_on")
        if "completed" in data:
            if not isinstance(data["completed"], bool):
                raise AsanaError(400, "completed: Must be a boolean")
            changes["completed"] = data["completed"]
            changes["completed_at"] = _now() if data["completed"] else None
        if "custom_fields" in data:
            changes["custom_fields"] = self._custom_values(task, data["custom_fields"])
        if "external" in data:
            changes["external"] = self._external(task, data["external"])
        task.update(changes)
        task["modified_at"] = _now()

    def _custom_values(self, task: dict[str, Any], values: Any) -> dict[str, Any]:
        if not isinstance(values, dict):
            raise AsanaError(400, "custom_fields: Must be an object")
        allowed = set(self._fields_on(task))
        merged = dict(task["custom_fields"])
        for gid, value in values.items():
            if gid not in allowed:
                raise AsanaError(
                    400, f"custom_fields: Custom field with ID {gid} is not on given object"
                )
            field = self.custom_fields[gid]
            if value is None:
                merged.pop(gid, None)
            elif field["type"] == "enum":
                if value not in {o["gid"] for o in field["enum_options"]}:
                    raise AsanaError(
                        400, f"custom_fields: enum_value: Not a recognized ID: {value}"
                    )
                merged[gid] = value
            elif not isinstance(value, str):
                raise AsanaError(400, f"custom_fields: text_value: Must be a string: {value}")
            else:
                merged[gid] = value
        return merged

    def _external(self, task: dict[str, Any], external: Any) -> dict[str, str] | None:
        if external is None:
            return None
        if not isinstance(external, dict):
            raise AsanaError(400, "external: Must be an object")
        gid, blob = external.get("gid"), external.get("data")
        if gid is not None and (not isinstance(gid, str) or len(gid) > 1024):
            raise AsanaError(400, "external: gid: Must be a string of at most 1024 characters")
        if blob is not None and (not isinstance(blob, str) or len(blob) > 32768):
            raise AsanaError(400, "external: data: Must be a string of at most 32768 characters")
        owner = self.external.get(gid) if gid else None
        if owner is not None and owner != task["gid"]:
            raise AsanaError(
                400,
                f"external: gid: The external gid {gid} is already used by "
                "another object in this workspace",
            )
        old = (task["external"] or {}).get("gid")
        if old and old != gid:
            self.external.pop(old, None)
        if gid and task["gid"]:
            self.external[gid] = task["gid"]
        return {k: v for k, v in (("gid", gid), ("data", blob)) if v is not None}

    async def update_task(self, request: Request) -> Any:
        data = await self._data(request)
        with self.lock:
            task = self._find_task(request.path_params["task_gid"])
            for field in ("projects", "memberships", "followers", "workspace"):
                if field in data:
                    raise AsanaError(400, f"{field}: Cannot write this property")
            self._write(task, data)
            return {"data": self._task(task)}

    async def delete_task(self, request: Request) -> Any:
        with self.lock:
            task = self._find_task(request.path_params["task_gid"])
            del self.tasks[task["gid"]]
            if task["external"] and task["external"].get("gid"):
                self.external.pop(task["external"]["gid"], None)
            return {"data": {}}

    async def add_followers(self, request: Request) -> Any:
        data = await self._data(request)
        with self.lock:
            task = self._find_task(request.path_params["task_gid"])
            if not isinstance(data.get("followers"), list):
                raise AsanaError(400, "followers: Missing input")
            for ref in data["followers"]:
                gid = self._find_user(ref, "followers")
                if gid not in task["followers"]:
                    task["followers"].append(gid)
            return {"data": self._task(task)}

    async def remove_followers(self, request: Request) -> Any:
        data = await self._data(request)
        with self.lock:
            task = self._find_task(request.path_params["task_gid"])
            if not isinstance(data.get("followers"), list):
                raise AsanaError(400, "followers: Missing input")
            gone = {self._find_user(ref, "followers") for ref in data["followers"]}
            task["followers"] = [f for f in task["followers"] if f not in gone]
            return {"data": self._task(task)}

    async def add_task_to_section(self, request: Request) -> Any:
        data = await self._data(request)
        with self.lock:
            section = self._find(self.sections, "section", request.path_params["section_gid"])
            if "task" not in data:
                raise AsanaError(400, "task: Missing input")
            task = self._find_task(str(data["task"]))
            kept = [m for m in task["memberships"] if m["project"] != section["project"]]
            task["memberships"] = [
                *kept,
                {"project": section["project"], "section": section["gid"]},
            ]
            task["modified_at"] = _now()
            return {"data": {}}


def _select(body: dict[str, Any], request: Request) -> dict[str, Any]:
    """Apply `opt_fields`: gid plus the named top-level properties, as Asana returns them."""
    raw = request.query_params.get("opt_fields")
    if not raw:
        return body
    wanted = {f.strip().split(".")[0] for f in raw.split(",") if f.strip()} | {"gid"}

    def pick(obj: Any) -> Any:
        return {k: v for k, v in obj.items() if k in wanted} if isinstance(obj, dict) else obj

    data = body["data"]
    selected = [pick(item) for item in data] if isinstance(data, list) else pick(data)
    return {**body, "data": selected}


def _page(request: Request, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Offset pagination: `limit` 1–100, an opaque `offset`, and `next_page` or null."""
    query = request.query_params
    try:
        limit = int(query.get("limit", PAGE_MAX))
        start = int(query.get("offset", "0"))
    except ValueError as exc:
        raise AsanaError(400, "offset: Your pagination token is invalid") from exc
    if not 1 <= limit <= PAGE_MAX:
        raise AsanaError(400, f"limit: Must be between 1 and {PAGE_MAX}, got {limit}")
    end = start + limit
    next_page = None
    if end < len(items):
        path = f"{request.url.path.removeprefix(PREFIX)}?limit={limit}&offset={end}"
        next_page = {
            "offset": str(end),
            "path": path,
            "uri": f"{request.url.scheme}://{request.url.netloc}{PREFIX}{path}",
        }
    return {"data": items[start:end], "next_page": next_page}
