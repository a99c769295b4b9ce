"""The organisation's state, seeded from the world, and the lookups every endpoint uses.

`AsanaStore` holds the workspace, users, custom fields, projects, sections, tasks and the
`external` gid index; its lookups raise AsanaError with Asana's 400/404 messages. Callers
hold the provider's lock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count
from typing import Any

from starlette.requests import Request

from sandbox.asana.errors import AsanaError
from sandbox.asana.limits import TokenLimiter
from sandbox.asana.oauth import AsanaAuth
from sandbox.base import ProviderApp

# Seeded on every project, so mappings have an enum and a text field to target.
CUSTOM_FIELDS: list[dict[str, Any]] = [
    {"name": "Priority", "type": "enum", "options": ["High", "Medium", "Low"]},
    {"name": "Meeting link", "type": "text"},
]
OPTION_COLORS = ["red", "orange", "yellow-green", "green", "blue"]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AsanaStore(ProviderApp):
    """The seeded organisation in memory, and finding things in it by reference."""

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
        self.premium = bool(self.options.get("premium", True))
        if not hasattr(self, "auth"):  # issued tokens outlive a reset, as in Salesforce's
            self.auth = AsanaAuth(self.options)

    def _gid(self) -> str:
        return str(next(self._ids))

    # -- lookups --------------------------------------------------------------------
    def _premium(self, feature: str) -> None:
        """402 on a free workspace, as Asana answers premium-only features."""
        if not self.premium:
            raise AsanaError(
                402,
                f"{feature} are only available on premium workspaces. Upgrade this "
                "workspace to use them.",
            )

    @staticmethod
    def _oauth_only(request: Request, what: str) -> None:
        """The `external` field is "OAuth Required": personal access tokens may not use it."""
        if request.scope.get("asana_token") != "oauth":
            raise AsanaError(
                400,
                f"{what}: This property can only be used by an OAuth app; personal access "
                "tokens can't read or write external data",
            )

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
