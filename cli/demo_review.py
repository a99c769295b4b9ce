"""`meetsync demo`, last act: one approval round in Slack, clicked through the emulator.

The org's mapping now holds Opportunity updates for the meeting host's approval. The
Globex discovery call goes through the webhook again into a fresh database; its review
message is read back from the Slack emulator, the host clicks Approve (the emulator posts
Slack's signed `block_actions` payload to /v1/slack/interactions), and the demo shows the
message as updated and the Opportunity as Salesforce now holds it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from sqlalchemy import select

from admin.tokens import mint_token
from intake.app import create_app
from intake.client import post_meeting
from intake.serving import BackgroundServer
from meetsync.bootstrap import seed_demo
from meetsync.db.migrate import upgrade
from meetsync.db.models import OpRecord, ReviewRequest
from meetsync.db.session import session_scope
from meetsync.models import MeetingOutput
from sandbox.server import Sandbox
from sandbox.settings_for import settings_for
from workers.inprocess import InProcessWorkers

HELD = "opportunity-update"
REVIEW = {"mode": "approve", "approvers": ["host"], "expire_after": "24h"}


def review_mapping(example: Path, workdir: Path) -> Path:
    """The example mapping with the Opportunity update held for the host's approval."""
    body = yaml.safe_load(example.read_text())
    for dest in body["destinations"]:
        if dest["name"] == HELD:
            dest["review"] = dict(REVIEW)
    path = workdir / "acme-review.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def run_review_round(
    console: Console,
    sandbox: Sandbox,
    workdir: Path,
    example: Path,
    meeting: MeetingOutput,
    render: Any,
) -> None:
    """Send one meeting with review on, approve its held change in Slack, show the outcome."""
    console.rule("[bold]review: one approval round in Slack[/]")
    sandbox.reset()
    server = BackgroundServer()
    settings = settings_for(
        sandbox,
        database_url=f"sqlite:///{workdir / 'review.db'}",
        broker_url="stub",
        public_base_url=server.url,
    )
    upgrade(settings.database_url)
    with session_scope(settings.database_url) as session:
        seed_demo(session, settings, review_mapping(example, workdir))
    console.print(f"mapping: destination {HELD!r} gets review: {REVIEW}")
    workers = InProcessWorkers(settings)
    server.start(create_app(settings, workers.start()))
    slack = httpx.Client(base_url=sandbox.origins["slack"], trust_env=False, timeout=20)
    try:
        slack.put(
            "/_sandbox/interactivity",
            json={"request_url": f"{server.url}/v1/slack/interactions"},
        ).raise_for_status()
        with session_scope(settings.database_url) as session:
            token = mint_token(session, "acme", "demo review").token  # status is not public
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, trust_env=False, timeout=10, headers=auth) as http:
            assert settings.webhook_secret is not None  # demo mode's
            secret = settings.webhook_secret.get_secret_value()
            meeting_id = post_meeting(http, secret, meeting).json()["meeting_id"]
            message = _wait(lambda: _review_message(slack), "the review message")
            _wait(
                lambda: (
                    http.get(f"/v1/meetings/{meeting_id}").json()["status"] == "awaiting_review"
                ),
                "the other writes",
            )
            console.print(
                "meeting status: [bold]awaiting_review[/] (every other write done); "
                "the Opportunity untouched so far"
            )
            console.print(_opportunities(settings.database_url, sandbox, meeting_id, "before"))
            emails = {u["id"]: u["email"] for u in slack.get("/_sandbox/state").json()["users"]}
            name_of = lambda uid: emails.get(uid, uid)  # noqa: E731
            title = f"Slack DM to the host (ts {message['ts']})"
            console.print(Panel(render(message["blocks"], name_of), title=title))
            approve = (
                "review:approve_all" if _has(message, "review:approve_all") else "review:approve"
            )
            clicked = slack.post(
                "/_sandbox/click",
                json={
                    "channel": message["channel"],
                    "ts": message["ts"],
                    "action_id": approve,
                    "user": _host(meeting),
                },
            ).json()
            console.print(
                f"{_host(meeting)} clicks {approve.split(':')[1]}: Slack's signed payload "
                f"answered HTTP {clicked['status']} in {clicked['ms']} ms"
            )
            _wait(lambda: _settled(settings.database_url, meeting_id), "the approved write")
            updated = _wait(
                lambda: (
                    (m := _review_message(slack)) and "what was written" in str(m["blocks"]) and m
                ),
                "the updated message",
            )
            console.print(
                Panel(render(updated["blocks"], name_of), title="the same message, updated")
            )
            console.print(_opportunities(settings.database_url, sandbox, meeting_id, "after"))
            _show_decisions(console, settings.database_url, meeting_id)
    finally:
        slack.close()
        server.stop()
        workers.stop()


def _host(meeting: MeetingOutput) -> str:
    return next(a.email for a in meeting.attendees if a.internal and a.email)


def _has(message: dict[str, Any], action_id: str) -> bool:
    return action_id in str(message.get("blocks"))


def _review_message(slack: httpx.Client) -> dict[str, Any] | None:
    for message in slack.get("/_sandbox/state").json()["messages"]:
        if "Review what meetsync will write" in str(message.get("blocks")):
            return dict(message)
    return None


def _settled(database_url: str, meeting_id: str) -> bool:
    with session_scope(database_url) as session:
        requests = session.scalars(
            select(ReviewRequest).where(ReviewRequest.meeting_id == meeting_id)
        ).all()
        keys = [r.op_key for r in requests]
        held = session.scalars(select(OpRecord.state).where(OpRecord.key.in_(keys))).all()
    return bool(held) and all(s in {"done", "skipped", "failed"} for s in held)


def _opportunities(database_url: str, sandbox: Sandbox, meeting_id: str, when: str) -> Table:
    """The held ops' records as Salesforce holds them, for the proposed fields."""
    with session_scope(database_url) as session:
        requests = session.scalars(
            select(ReviewRequest).where(ReviewRequest.meeting_id == meeting_id)
        ).all()
        wanted = [
            (r.proposal.get("record_url") or "", r.proposal.get("fields") or []) for r in requests
        ]
    records = sandbox.admin("salesforce").state()["records"].get("Opportunity", [])
    table = Table("Opportunity", "field", "value", title=f"Salesforce {when}")
    for url, fields in wanted:
        record = next((o for o in records if o["Id"] in url), None)
        if record is None:
            continue
        for field in fields:
            table.add_row(record["Name"], field["name"], str(record.get(field["name"])))
    return table


def _show_decisions(console: Console, database_url: str, meeting_id: str) -> None:
    with session_scope(database_url) as session:
        requests = session.scalars(
            select(ReviewRequest).where(ReviewRequest.meeting_id == meeting_id)
        ).all()
        table = Table("request", "state", "decided by", "at", "model / prompt", title="recorded")
        for r in requests:
            table.add_row(
                r.id[:8],
                r.state,
                r.decided_by or "—",
                r.decided_at.strftime("%H:%M:%S") if r.decided_at else "—",
                f"{r.model} / {r.prompt_version}",
            )
    console.print(table)


def _wait(check: Any, what: str, timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what}")
