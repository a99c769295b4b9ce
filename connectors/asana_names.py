"""Names to gids in Asana, cached per connector instance, and people's emails back from gids.

Workspaces, projects, sections, custom fields with their options, and users by email are
each looked up once per instance. A name that matches nothing raises InvalidMapping naming
the miss and what exists; an email with no Asana user resolves to None, so the caller can
warn and go on.
"""

from __future__ import annotations

from typing import Any

from connectors.asana_session import AsanaSession
from connectors.errors import InvalidMapping, Permanent


class AsanaNames(AsanaSession):
    """Resolves the names a mapping uses to Asana gids, once per instance."""

    # -- names to gids, cached per instance ---------------------------------------------------
    def _place(self, target: dict[str, Any]) -> tuple[str, str | None]:
        """(project gid, section gid or None) for a target of names or gids."""
        workspace = self._workspace(target.get("workspace") or self.default_workspace)
        wanted = target.get("project")
        if not wanted:
            raise InvalidMapping("an Asana target needs a project")
        if workspace not in self._projects:
            found = self._call(
                lambda: list(
                    self.projects.get_projects(
                        {"workspace": workspace, "archived": False, "opt_fields": "name"},
                        _request_timeout=self.timeout,
                    )
                )
            )
            self._projects[workspace] = {p["name"]: p["gid"] for p in found}
        project = _pick("project", wanted, self._projects[workspace])
        name = target.get("section")
        if not name:
            return project, None
        if project not in self._sections:
            found = self._call(
                lambda: list(
                    self.sections.get_sections_for_project(
                        project, {"opt_fields": "name"}, _request_timeout=self.timeout
                    )
                )
            )
            self._sections[project] = {s["name"]: s["gid"] for s in found}
        return project, _pick(f"section in project {wanted!r}", name, self._sections[project])

    def _workspace(self, wanted: str | None) -> str:
        if self._workspaces is None:
            found = self._call(
                lambda: list(
                    self.workspaces.get_workspaces(
                        {"opt_fields": "name"}, _request_timeout=self.timeout
                    )
                )
            )
            self._workspaces = {w["name"]: w["gid"] for w in found}
        if wanted:
            return _pick("workspace", wanted, self._workspaces)
        if len(self._workspaces) != 1:
            raise InvalidMapping(
                "this Asana token sees several workspaces; name one: "
                + ", ".join(sorted(self._workspaces))
            )
        return next(iter(self._workspaces.values()))

    def _custom_fields(self, project: str) -> dict[str, dict[str, Any]]:
        if project not in self._fields:
            found = self._call(
                lambda: list(
                    self.settings.get_custom_field_settings_for_project(
                        project,
                        {
                            "opt_fields": "custom_field.name,custom_field.type,"
                            "custom_field.enum_options"
                        },
                        _request_timeout=self.timeout,
                    )
                )
            )
            fields = {}
            for setting in found:
                field = setting["custom_field"]
                options = {
                    o["name"]: o["gid"]
                    for o in field.get("enum_options") or []
                    if o.get("enabled", True)
                }
                fields[field["name"]] = {
                    "gid": field["gid"],
                    "type": field.get("type"),
                    "options": options,
                }
            self._fields[project] = fields
        return self._fields[project]

    def _person(self, email: str) -> str | None:
        """A user's gid by email, or None when the workspace has no such user."""
        key = email.strip().lower()
        if key not in self._people:
            try:
                user = self._call(
                    lambda: self.users.get_user(
                        key, {"opt_fields": "email"}, _request_timeout=self.timeout
                    )
                )
                self._people[key] = user["gid"]
            except Permanent as exc:
                if exc.provider_code not in {"400", "404"}:
                    raise
                self._people[key] = None
        return self._people[key]

    def _email_of(self, user: dict[str, Any] | None) -> str | None:
        """A user's email: from the response when Asana expanded it, else looked up once."""
        if not user:
            return None
        if user.get("email"):
            return str(user["email"])
        known = {gid: email for email, gid in self._people.items() if gid}
        if user["gid"] not in known:
            found = self._call(
                lambda: self.users.get_user(
                    user["gid"], {"opt_fields": "email"}, _request_timeout=self.timeout
                )
            )
            self._people[str(found.get("email", "")).lower()] = user["gid"]
            return found.get("email")
        return known[user["gid"]]


def _pick(kind: str, wanted: str, known: dict[str, str]) -> str:
    """A gid from a name or a gid; InvalidMapping naming the miss and what exists."""
    if wanted in known:
        return known[wanted]
    if wanted in known.values():
        return wanted
    listed = ", ".join(sorted(known)) or "none"
    raise InvalidMapping(f"Asana has no {kind} {wanted!r}; it has: {listed}")
