"""The Slack connector's contract case: a recap in #sales-meetings, keyed by message metadata."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.base import ConnectionConfig, Connector, Op
from connectors.errors import RateLimited, Transient
from connectors.slack import SlackConnector
from sandbox.client import SandboxClient
from sandbox.server import Sandbox
from sandbox.slack import TOKEN
from tests.contract.case import ContractCase, Refusal

TARGET = {"channel": "#sales-meetings"}
VARIANTS = {
    "a": {"title": "Globex discovery call", "summary": "Globex wants an analytics pilot."},
    "b": {"title": "Globex discovery call", "summary": "Globex wants a pilot by March."},
}


def recap_fields(title: str, summary: str | None) -> dict[str, Any]:
    """A small recap in the mapping engine's vocabulary."""
    return {
        "title": title,
        "summary": summary,
        "meeting_url": "https://meet.example.com/rec/1",
        "action_items": [
            {
                "title": "Send the pricing sheet",
                "owner": "Dana Reyes",
                "owner_email": "dana@acme.io",
                "due_date": "2026-12-01",
                "url": None,
            },
        ],
        "crm_changes": [{"field": "Stage", "value": "Qualification"}],
        "links": [],
        "dm_owners": False,
    }


def slack_config(sandbox: Sandbox) -> ConnectionConfig:
    """A connection to the sandbox workspace with its bot token."""
    return ConnectionConfig(
        name="slack-main",
        provider="slack",
        base_url=sandbox.urls["slack"],
        credentials={"bot_token": TOKEN},
    )


@dataclass
class SlackCase:
    """Fills tests.contract.case.ContractCase for Slack."""

    connector: Connector
    admin: SandboxClient
    provider: str = "slack"
    write_path: str = "/api/chat.postMessage"

    def op(self, variant: str = "a") -> Op:
        chosen = VARIANTS[variant]
        return Op.plan(
            org_id="org-1",
            meeting_id="meeting-1",
            connector="slack",
            connection="slack-main",
            action="post_message",
            item_key="recap",
            target=TARGET,
            fields=recap_fields(chosen["title"], chosen["summary"]),
        )

    def held(self, op: Op) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.admin.state()["messages"]
        return [
            m
            for m in messages
            if ((m.get("metadata") or {}).get("event_payload") or {}).get("op_key") == op.key
        ]

    def reflects(self, obj: dict[str, Any], op: Op) -> bool:
        rendered = str(obj.get("blocks"))
        return (
            obj["metadata"]["event_payload"]["payload_hash"] == op.payload_hash
            and op.fields["summary"] in rendered
            and obj["channel_name"] == "sales-meetings"
        )

    def rejected_op(self) -> Op:
        """The bot was never invited to #general: Slack answers not_in_channel."""
        op = self.op()
        return op.model_copy(update={"target": {"channel": "#general"}})

    def refusals(self) -> list[Refusal]:
        # Slack answers API errors with HTTP 200; what a fault can stand for is the method
        # tiers (conversations.list resolves the channel) and a server that gave up.
        return [
            Refusal({"path": "/api/conversations.list", "status": 429, "retry_after": 3},
                    RateLimited, "ratelimited", "slow down"),
            Refusal({"path": "/api/chat.postMessage", "status": 500, "code": "internal_error"},
                    Transient, "internal_error", "Slack answered HTTP 500"),
        ]  # fmt: skip

    def set_auth(self, action: str) -> None:
        # Bot tokens do not expire; "expire" is treated as a revocation.
        body = {"action": "restore" if action == "restore" else "revoke"}
        self.admin.http.post("/_sandbox/auth", json=body).raise_for_status()


def make_case(sandbox: Sandbox) -> ContractCase:
    """A Slack connector and admin client pointed at the running sandbox."""
    return SlackCase(SlackConnector(slack_config(sandbox)), SandboxClient(sandbox.origins["slack"]))
