"""Objects as Asana's API returns them: users, projects, sections, custom fields, tasks.

`AsanaRepresentations` turns the store's records into Asana's full response shapes (compact
references, custom field values, permalinks), and the inspection snapshot from them.
"""

from __future__ import annotations

from typing import Any

from sandbox.asana.store import AsanaStore


def _permalink(project: str, task: str) -> str:
    return f"https://app.asana.com/0/{project}/{task}"


class AsanaRepresentations(AsanaStore):
    """The store's records in the shapes the API answers with."""

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

    def _project(self, project: dict[str, Any]) -> dict[str, Any]:
        return {
            **self._compact(project, "project"),
            "archived": False,
            "created_at": project["created_at"],
            "workspace": dict(self.workspace),
            "permalink_url": f"https://app.asana.com/0/{project['gid']}/{project['gid']}",
        }

    def _section(self, section: dict[str, Any]) -> dict[str, Any]:
        return {
            **self._compact(section, "section"),
            "project": self._compact(self.projects[section["project"]], "project"),
        }
