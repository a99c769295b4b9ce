"""The Asana connector's contract cases: tasks in a seeded project, keyed by `external` on an
OAuth connection, and by a marker in the notes on a personal access token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from connectors.asana import AsanaConnector
from connectors.asana_oauth import access_token, authorization_url, exchange_code
from connectors.asana_tasks import MARKER
from connectors.base import ConnectionConfig, Connector, Op
from connectors.errors import Permanent
from sandbox.client import SandboxClient
from sandbox.server import Sandbox
from tests.contract.case import ContractCase, Refusal

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
    oauth: bool = True

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
        if not self.oauth:
            return [t for t in tasks if f"{MARKER} {op.key} " in (t.get("notes") or "")]
        return [t for t in tasks if (t.get("external") or {}).get("gid") == op.key]

    def reflects(self, obj: dict[str, Any], op: Op) -> bool:
        priority = next(f for f in obj["custom_fields"] if f["name"] == "Priority")
        return (
            obj["name"] == op.fields["name"]
            and obj["due_on"] == op.fields["due_on"]
            and priority["display_value"] == op.fields["custom_fields"]["Priority"]
            and (
                obj["external"]["data"] == op.payload_hash
                if self.oauth
                else obj["notes"].endswith(f"{MARKER} {op.key} {op.payload_hash}")
            )
        )

    def rejected_op(self) -> Op:
        """Asana refuses an impossible due date with a 400."""
        op = self.op()
        return op.model_copy(update={"fields": {**op.fields, "due_on": "2026-02-30"}})

    def refusals(self) -> list[Refusal]:
        create = {"method": "POST", "path": self.write_path}
        premium = "Custom fields are only available on premium workspaces."
        return [
            Refusal({**create, "status": 402, "message": premium}, Permanent, "402", "premium"),
            Refusal({**create, "status": 403}, Permanent, "403", "Forbidden"),
        ]

    def set_auth(self, action: str) -> None:
        # OAuth access tokens expire (the connector refreshes them); PATs only get revoked
        self.admin.http.post("/_sandbox/auth", json={"action": action}).raise_for_status()


def task_key(task: dict[str, Any]) -> str | None:
    """The op key a held task carries: its external gid (OAuth) or its notes marker (PAT)."""
    external = (task.get("external") or {}).get("gid")
    if external:
        return str(external)
    for line in reversed((task.get("notes") or "").splitlines()):
        if line.startswith(f"{MARKER} "):
            return line.split()[1]
    return None


PAT = "sandbox-pat"
CLIENT_ID, CLIENT_SECRET = "sandbox-client", "sandbox-client-secret"
REDIRECT = "https://meetsync.example/oauth/asana"


def oauth_credentials(sandbox: Sandbox) -> dict[str, str]:
    """An admin's consent through the OAuth app, as the connection stores it."""
    url = authorization_url(sandbox.urls["asana"], CLIENT_ID, REDIRECT, state="s1")
    with httpx.Client(trust_env=False) as http:
        consent = http.get(url)  # the sandbox consents at once and redirects back
    code = httpx.URL(consent.headers["location"]).params["code"]
    return exchange_code(sandbox.urls["asana"], CLIENT_ID, CLIENT_SECRET, REDIRECT, code)


def oauth_token(sandbox: Sandbox) -> str:
    """An OAuth access token for plain-HTTP tests of what only OAuth apps may do."""
    return access_token(sandbox.urls["asana"], oauth_credentials(sandbox))


def asana_config(sandbox: Sandbox, *, oauth: bool = True, **options: Any) -> ConnectionConfig:
    """A connection through the OAuth app, or with the personal access token."""
    return ConnectionConfig(
        name="asana-main",
        provider="asana",
        base_url=sandbox.urls["asana"],
        credentials=oauth_credentials(sandbox) if oauth else {"token": PAT},
        options=options,
    )


def make_case(sandbox: Sandbox, variant: str = "oauth") -> ContractCase:
    """An Asana connector (OAuth, or `pat`) and admin client pointed at the running sandbox."""
    oauth = variant != "pat"
    connector = AsanaConnector(asana_config(sandbox, oauth=oauth))
    return AsanaCase(connector, SandboxClient(sandbox.origins["asana"]), oauth=oauth)
