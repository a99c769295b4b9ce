"""`meetsync demo`: the main job on embedded defaults, end to end, twice.

Sandbox emulators on loopback, a SQLite file, the in-process broker. The bundled meetings
go through the real webhook over HTTP; the second pass shows that nothing is written twice.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

import mappings
from intake.app import create_app
from intake.client import post_meeting
from intake.serving import BackgroundServer
from meetsync.bootstrap import seed_demo
from meetsync.db.migrate import upgrade
from meetsync.db.models import InsightRecord, OpRecord
from meetsync.db.session import session_scope
from meetsync.models import MeetingOutput
from meetsync.samples import load_samples
from sandbox.client import SandboxClient
from sandbox.server import Sandbox
from sandbox.settings_for import settings_for
from workers.inprocess import InProcessWorkers

EXAMPLE_MAPPING = Path(mappings.__file__).parent / "examples" / "acme.yaml"


def held_objects(sandbox: Sandbox) -> Counter[str]:
    """How many objects each provider holds, read through its inspection API."""
    counts: Counter[str] = Counter()
    for name, origin in sandbox.origins.items():
        if name == "openai":
            continue
        state = SandboxClient(origin, verify=sandbox.ca_file).state()
        for kind, items in state.items():
            if isinstance(items, dict):  # e.g. Salesforce records by object
                for obj, records in items.items():
                    if isinstance(records, list):
                        counts[f"{name}.{obj}"] += len(records)
            elif isinstance(items, list):
                counts[f"{name}.{kind}"] += len(items)
    return counts


def run_demo(console: Console, keep: bool = False) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="meetsync-demo-"))
    with Sandbox() as sandbox:
        server = BackgroundServer()
        settings = settings_for(
            sandbox,
            database_url=f"sqlite:///{workdir / 'demo.db'}",
            broker_url="stub",
            public_base_url=server.url,
        )
        console.rule("[bold]meetsync demo[/]")
        console.print(f"database {settings.database_url}; broker: in-process")
        for name, url in sandbox.urls.items():
            console.print(f"  sandbox {name:<11} {url}")
        upgrade(settings.database_url)
        with session_scope(settings.database_url) as session:
            seed_demo(session, settings, EXAMPLE_MAPPING)
        workers = InProcessWorkers(settings)
        pipeline = workers.start()
        server.start(create_app(settings, pipeline))
        try:
            samples = load_samples()
            secret = settings.webhook_secret.get_secret_value()
            with httpx.Client(base_url=settings.public_base_url, trust_env=False) as http:
                before = held_objects(sandbox)
                ids = _send_all(http, secret, samples, console, "first pass")
                workers.join(timeout_s=180)
                after_first = held_objects(sandbox)
                for meeting, meeting_id in zip(samples, ids, strict=True):
                    _show_meeting(console, settings.database_url, meeting, meeting_id, http)
                console.rule("second pass: the same meetings again, as new deliveries")
                _send_all(http, secret, samples, console, "second pass")
                workers.join(timeout_s=180)
                after_second = held_objects(sandbox)
            _show_counts(console, before, after_first, after_second)
        finally:
            server.stop()
            workers.stop()
    if keep:
        console.print(f"kept {workdir}")


def _send_all(
    http: httpx.Client, secret: str, samples: list[MeetingOutput], console: Console, label: str
) -> list[str]:
    ids = []
    for meeting in samples:
        response = post_meeting(http, secret, meeting)
        response.raise_for_status()
        ids.append(response.json()["meeting_id"])
    console.print(f"{label}: {len(ids)} webhooks accepted (202)")
    return ids


def _show_meeting(
    console: Console, database_url: str, meeting: MeetingOutput, meeting_id: str, http: httpx.Client
) -> None:
    console.rule(f"[bold]{meeting.title}[/]")
    with session_scope(database_url) as session:
        record = session.scalars(
            select(InsightRecord)
            .where(InsightRecord.meeting_id == meeting_id)
            .order_by(InsightRecord.id.desc())
        ).first()
        insights: dict[str, Any] = record.insights if record else {}
        ops = session.scalars(select(OpRecord).where(OpRecord.meeting_id == meeting_id)).all()
        pushes = [
            (
                o.connector,
                o.object or o.target.get("object", o.action),
                o.state,
                o.external_id,
                o.url,
                o.last_error,
            )
            for o in ops
        ]
    items = Table("action item", "owner", "due", "evidence", title="extracted", expand=True)
    for item in insights.get("action_items", []):
        items.add_row(
            item["title"],
            item.get("owner") or "—",
            item.get("due_date") or "—",
            f"“{item['evidence']}”",
        )
    console.print(items)
    crm = {k: v for k, v in (insights.get("crm") or {}).items() if v}
    if crm:
        fields = Table("CRM field", "value", "evidence", expand=True)
        for name, fact in crm.items():
            value = fact.get("value", fact.get("values"))
            fields.add_row(name, str(value), f"“{fact['evidence']}”")
        console.print(fields)
    table = Table("provider", "object", "state", "id", "url / error", title="pushed", expand=True)
    for connector, obj, state, external_id, url, error in pushes:
        table.add_row(connector, str(obj), state, external_id or "—", url or error or "—")
    console.print(table)
    status = http.get(f"/v1/meetings/{meeting_id}").json()["status"]
    console.print(f"meeting status: [bold]{status}[/]")


def _show_counts(
    console: Console, before: Counter[str], first: Counter[str], second: Counter[str]
) -> None:
    table = Table(
        "provider.object",
        "seeded",
        "after pass 1",
        "after pass 2",
        "new in pass 2",
        title="what the providers hold",
    )
    for name in sorted(set(first) | set(second)):
        table.add_row(
            name,
            str(before[name]),
            str(first[name]),
            str(second[name]),
            str(second[name] - first[name]),
        )
    console.print(table)
    new = sum(second.values()) - sum(first.values())
    verdict = "[green]nothing new was written[/]" if new == 0 else f"[red]{new} new objects[/]"
    console.print(f"second pass: {verdict}")
