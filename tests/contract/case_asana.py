"""The Asana connector's contract case: tasks in a seeded project, keyed by `external`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.asana import AsanaConnector
from connectors.base import ConnectionConfig, Connector, Op
from sandbox.client import SandboxClient
from sandbox.server import Sandbox
from tests.contract.case import ContractCase

TARGET = {"workspace": None, "project": "Customer Follow-ups", "section": "This week"}
VARIANTS = {
    "a": {"name": "Send Globex the pricing sheet", "due_on": "2026-12-01", "priority": "High"},
    "b": {
        "name": "Send Globex the revised pricing sheet",
        "due_on": "2026-12-08",
        "priority": "Medium",
    },
}


@dataclass
class AsanaCase:
    """Fills tests.contract.case.ContractCase for Asana."""

    connector: Connector
    admin: SandboxClient
    provider: str = "asana"
    write_path: str = "/api/1.0/tasks"

    def op(self, variant: str = "a") -> Op:
        chosen = VARIANTS[variant]
        return Op.plan(
            org_id="org-1",
            meeting_id="meeting-1",
            connector="asana",
            connection="asana-main",
            action="upsert_task",
            item_key="action-item-1",
            target=TARGET,
            fields={
                "name": chosen["name"],
                "notes": "Hank asked for pricing by Friday.",
                "assignee_email": "dana@acme.io",
                "due_on": chosen["due_on"],
                "followers_emails": ["sam@acme.io"],
                "custom_fields": {"Priority": chosen["priority"]},
            },
        )

    def held(self, op: Op) -> list[dict[str, Any]]:
        tasks: list[dict[str, Any]] = self.admin.state()["tasks"]
        return [t for t in tasks if (t.get("external") or {}).get("gid") == op.key]

    def reflects(self, obj: dict[str, Any], op: Op) -> bool:
        priority = next(f for f in obj["custom_fields"] if f["name"] == "Priority")
        return (
            obj["name"] == op.fields["name"]
            and obj["due_on"] == op.fields["due_on"]
            and priority["display_value"] == op.fields["custom_fields"]["Priority"]
            and obj["external"]["data"] == op.payload_hash
        )

    def rejected_op(self) -> Op:
        """Asana refuses an impossible due date with a 400."""
        op = self.op()
        return op.model_copy(update={"fields": {**op.fields, "due_on": "2026-02-30"}})

    def set_auth(self, action: str) -> None:
        # Asana tokens do not expire; "expire" is treated as a revocation.
        body = {"action": "restore" if action == "restore" else "revoke"}
        self.admin.http.post("/_sandbox/auth", json=body).raise_for_status()


def make_case(sandbox: Sandbox) -> ContractCase:
    """An Asana connector and admin client pointed at the running sandbox."""
    config = ConnectionConfig(
        name="asana-main",
        provider="asana",
        base_url=sandbox.urls["asana"],
        credentials={"token": "sandbox-pat"},
    )
    return AsanaCase(AsanaConnector(config), SandboxClient(sandbox.origins["asana"]))
