"""The Salesforce contract case: Task upserts keyed on the Meetsync_Key__c External ID."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from connectors.base import ConnectionConfig, Op
from connectors.errors import Permanent, Transient
from connectors.salesforce import SalesforceConnector
from sandbox.client import SandboxClient
from sandbox.salesforce.auth import DEFAULTS
from sandbox.salesforce.ids import make_id
from sandbox.server import Sandbox
from tests.contract.case import Refusal

API_VERSION = "62.0"
VARIANTS = {
    "a": {
        "Subject": "Send the pilot SOW to Globex",
        "Status": "Not Started",
        "Priority": "High",
        "ActivityDate": "2026-12-04",
    },
    "b": {
        "Subject": "Send the revised pilot SOW to Globex",
        "Status": "In Progress",
        "Priority": "Normal",
        "ActivityDate": "2026-12-11",
    },
}


def connection(sandbox: Sandbox, **options: Any) -> ConnectionConfig:
    """A connection to the sandbox org with the sandbox's connected-app credentials."""
    return ConnectionConfig(
        name="acme-salesforce",
        provider="salesforce",
        base_url=sandbox.origins["salesforce"],
        credentials=dict(DEFAULTS),
        options={"ca_file": sandbox.ca_file, "api_version": API_VERSION, **options},
    )


def task_op(variant: str = "a", *, key: str = "contract-item-1", **target: Any) -> Op:
    """A follow-up Task for Dana about Globex, linked to Hank and the Globex opportunity."""
    return Op.plan(
        org_id="acme",
        meeting_id="m-1",
        connector="salesforce",
        connection="acme-salesforce",
        action="upsert",
        item_key=key,
        target={
            "object": "Task",
            "owner_email": "dana@acme.io",
            "who_emails": ["hank@globex.com"],
            "what": {
                "object": "Opportunity",
                "id": None,
                "match_emails": ["hank@globex.com"],
                "rule": "only",
            },
            **target,
        },
        fields=dict(VARIANTS[variant]),
    )


@dataclass
class SalesforceCase:
    provider: str
    connector: SalesforceConnector
    admin: SandboxClient
    write_path: str
    write_method: str = "PATCH"  # an upsert by External ID is a PATCH, not a POST

    def op(self, variant: str = "a") -> Op:
        return task_op(variant)

    def held(self, op: Op) -> list[dict[str, Any]]:
        tasks = self.admin.state()["records"]["Task"]
        return [t for t in tasks if t.get("Meetsync_Key__c") == op.key]

    def reflects(self, obj: dict[str, Any], op: Op) -> bool:
        return all(obj.get(name) == value for name, value in op.fields.items())

    def rejected_op(self) -> Op:
        # Well-formed but unknown: only Salesforce can tell, and it answers
        # INVALID_CROSS_REFERENCE_KEY.
        return task_op(
            what={
                "object": "Opportunity",
                "id": make_id("006", 999_999),
                "match_emails": [],
                "rule": "only",
            }
        )

    def refusals(self) -> list[Refusal]:
        upsert = {"method": "PATCH", "path": self.write_path, "status": 400}
        return [
            Refusal({**upsert, "code": "UNABLE_TO_LOCK_ROW"}, Transient, "UNABLE_TO_LOCK_ROW",
                    "unable to obtain exclusive access"),
            Refusal({**upsert, "code": "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY"}, Permanent,
                    "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", "Tasks from meetings need a Type"),
            Refusal({**upsert, "code": "INACTIVE_OWNER_OR_USER",
                     "message": "operation performed with inactive user [005000000000001] as "
                     "owner of task"},
                    Permanent, "INACTIVE_OWNER_OR_USER", "inactive user"),
        ]  # fmt: skip

    def set_auth(self, action: str) -> None:
        self.admin.http.post("/_sandbox/auth", json={"action": action}).raise_for_status()


def admin_client(sandbox: Sandbox) -> SandboxClient:
    """The inspection client, trusting the sandbox's self-signed certificate."""
    context = ssl.create_default_context(cafile=sandbox.ca_file)
    return SandboxClient(sandbox.origins["salesforce"], verify=context)  # type: ignore[arg-type]


def make_case(sandbox: Sandbox) -> SalesforceCase:
    """The case, with describe warmed so auth tests exercise a refresh, not a first login."""
    connector = SalesforceConnector(connection(sandbox))
    connector.describe({"object": "Task"})
    return SalesforceCase(
        provider="salesforce",
        connector=connector,
        admin=admin_client(sandbox),
        write_path=f"/services/data/v{API_VERSION}/sobjects/Task",
    )
