"""The task endpoints: list, read, create, update, delete, followers and section moves.

Every writable field is validated before any is applied (no partial writes), with Asana's
400 messages; `external` gids are unique per workspace and indexed for `external:<gid>`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from starlette.requests import Request

from sandbox.asana.envelope import _page
from sandbox.asana.errors import AsanaError
from sandbox.asana.representations import AsanaRepresentations
from sandbox.asana.rich_text import _html, _plain_text
from sandbox.asana.store import _now


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


MAX_TEXT_VALUE = 1_024  # a text custom field's value


class AsanaTasks(AsanaRepresentations):
    """Asana's /tasks endpoints and the validation of what they write."""

    async def _data(self, request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError as exc:
            raise AsanaError(400, "Could not parse request data, invalid JSON") from exc
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise AsanaError(400, "data: Missing input")
        return data

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
            since = _since(query.get("modified_since"), "modified_since")
            if since is not None:
                found = [t for t in found if _instant(t["modified_at"]) >= since]
            done_since = _since(query.get("completed_since"), "completed_since")
            if done_since is not None:  # incomplete tasks, or completed since then
                found = [
                    t
                    for t in found
                    if not t.get("completed")
                    or _instant(t.get("completed_at") or t["modified_at"]) >= done_since
                ]
            if query.get("opt_fields"):
                return _page(request, found, self._task)
            return _page(request, found, _compact_task)

    async def get_task(self, request: Request) -> Any:
        ref = request.path_params["task_gid"]
        if ref.startswith("external:"):
            self._oauth_only(request, "task")
        with self.lock:
            return {"data": self._task(self._find_task(ref))}

    async def create_task(self, request: Request) -> Any:
        data = await self._data(request)
        self._check_plan(request, data)
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

    def _check_plan(self, request: Request, data: dict[str, Any]) -> None:
        """What the token and the workspace's plan allow this write to touch."""
        if "external" in data:
            self._oauth_only(request, "external")
        if data.get("custom_fields"):
            self._premium("Custom fields")

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
            elif len(value) > MAX_TEXT_VALUE:
                raise AsanaError(
                    400,
                    f"custom_fields: text_value: Must be at most {MAX_TEXT_VALUE} characters, "
                    f"got {len(value)}",
                )
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
        self._check_plan(request, data)
        ref = request.path_params["task_gid"]
        if ref.startswith("external:"):
            self._oauth_only(request, "task")
        with self.lock:
            task = self._find_task(ref)
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


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _since(value: str | None, name: str) -> datetime | None:
    """A date-time query parameter (`now` is Asana's shorthand for the present moment)."""
    if value is None:
        return None
    if value == "now":
        return _instant(_now())
    try:
        moment = _instant(value)
    except ValueError as exc:
        raise AsanaError(400, f"{name}: Not a valid date-time: {value}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=_instant(_now()).tzinfo)


def _compact_task(task: dict[str, Any]) -> dict[str, Any]:
    """A task as a list shows it without `opt_fields`."""
    return {
        "gid": task["gid"],
        "resource_type": "task",
        "name": task["name"],
        "resource_subtype": "default_task",
    }
