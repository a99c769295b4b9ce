"""`meetsync demo`: the main job on embedded defaults, end to end, twice.

Sandbox emulators on loopback, a SQLite file, the in-process broker. The bundled meetings
go through the real webhook over HTTP; the second pass shows that nothing is written twice.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.panel import Panel
from rich.table import Column, Table
from rich.text import Text
from sqlalchemy import select

import mappings
from admin.tokens import mint_token
from cli.demo_memory import show_memory
from cli.demo_review import run_review_round
from intake.app import create_app
from intake.client import post_meeting
from intake.serving import BackgroundServer
from meetsync.bootstrap import seed_demo
from meetsync.db.migrate import upgrade
from meetsync.db.models import InsightRecord, OpRecord
from meetsync.db.session import session_scope
from meetsync.links import meeting_link
from meetsync.models import MeetingOutput
from meetsync.samples import load_samples
from sandbox.client import SandboxClient
from sandbox.server import Sandbox
from sandbox.settings_for import settings_for
from workers.inprocess import InProcessWorkers

EXAMPLE_MAPPING = Path(mappings.__file__).parent / "examples" / "acme.yaml"
# Slack's control sequences in mrkdwn: a user mention or a link with a label.
_MENTION = re.compile(r"<@([A-Z0-9]+)>")
_LINK = re.compile(r"<([^|<>]+)\|([^<>]*)>")
_MAX_LINE = 160


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


def run_demo(console: Console, keep: bool = False, serve: bool = False) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="meetsync-demo-"))
    try:
        _run(console, workdir, serve)
    finally:
        if keep:
            console.print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _run(console: Console, workdir: Path, serve: bool = False) -> None:
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
        console.print(
            f"admin console {server.url}/console" + ("" if serve else " (--serve keeps it up)")
        )
        try:
            samples = load_samples()
            assert settings.webhook_secret is not None  # demo mode's
            secret = settings.webhook_secret.get_secret_value()
            with httpx.Client(base_url=settings.public_base_url, trust_env=False) as http:
                before = held_objects(sandbox)
                ids = _send_all(http, secret, samples, console, "first pass")
                workers.join(timeout_s=180)
                after_first = held_objects(sandbox)
                for meeting, meeting_id in zip(samples, ids, strict=True):
                    link = meeting_link(settings, meeting_id)
                    _show_meeting(console, settings.database_url, meeting, meeting_id, http, link)
                    _show_posted(console, sandbox, settings.database_url, meeting, meeting_id)
                console.rule("second pass: the same meetings again, as new deliveries")
                _send_all(http, secret, samples, console, "second pass")
                workers.join(timeout_s=180)
                after_second = held_objects(sandbox)
            _show_counts(console, before, after_first, after_second)
            show_memory(console, settings, samples[0])
            if serve:
                _serve_console(console, settings.database_url, server.url)
        finally:
            server.stop()
            workers.stop()
        run_review_round(console, sandbox, workdir, EXAMPLE_MAPPING, samples[0], render_blocks)


def _serve_console(console: Console, database_url: str, url: str) -> None:
    """Keep the demo up for the console, with an admin token for acme, until Ctrl-C."""
    with session_scope(database_url) as session:
        token = mint_token(session, "acme", "demo console").token
    console.rule("admin console")
    console.print(f"open {url}/console and sign in with acme's admin token:\n  {token}")
    console.print("Ctrl-C stops the demo")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        console.print("stopping")


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
    console: Console,
    database_url: str,
    meeting: MeetingOutput,
    meeting_id: str,
    http: httpx.Client,
    link: str,
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
    table = Table("provider", "object", "state", title="pushed", expand=True)
    # ids and URLs fold onto a second line at 80 columns: never cut
    table.add_column("id", overflow="fold")
    table.add_column("url / error", overflow="fold")
    for connector, obj, state, external_id, url, error in pushes:
        table.add_row(connector, str(obj), state, external_id or "—", url or error or "—")
    console.print(table)
    if any(p[2] == "failed" and "NO_MATCH" in (p[5] or "") for p in pushes):
        console.print(
            "[dim]intended: the sandbox holds no open opportunity for this account, so the "
            "mapping's opportunity update has nothing to update and the meeting is partial; "
            "in production such a write waits in `meetsync dlq list` with this reason.[/]"
        )
    # the signed link a recap carries opens the meeting's public view
    status = http.get(link).json()["status"]
    console.print(f"meeting status: [bold]{status}[/]")


def _show_counts(
    console: Console, before: Counter[str], first: Counter[str], second: Counter[str]
) -> None:
    table = Table(
        Column("provider.object", overflow="fold"),
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


def _show_posted(
    console: Console, sandbox: Sandbox, database_url: str, meeting: MeetingOutput, meeting_id: str
) -> None:
    """The Slack recap as posted and one Asana task, read back from the providers."""
    with session_scope(database_url) as session:
        ops = session.scalars(
            select(OpRecord)
            .where(OpRecord.meeting_id == meeting_id, OpRecord.state == "done")
            .order_by(OpRecord.created_at)
        ).all()
        posted = [(o.connector, o.external_id, dict(o.receipt or {})) for o in ops]
    slack = _state(sandbox, "slack")
    emails = {u["id"]: u["email"] for u in slack["users"]}
    names = {a.email: a.name for a in meeting.attendees if a.email and a.name}

    def name_of(user_id: str) -> str:
        email = emails.get(user_id, user_id)
        return names.get(email) or email

    messages = {(m["channel"], m["ts"]): m for m in slack["messages"]}
    for connector, external_id, receipt in posted:
        if connector != "slack" or not external_id:
            continue
        channel, _, first = external_id.partition(":")
        stamps = (receipt.get("extra") or {}).get("ts") or [first]
        for ts in stamps:
            message = messages.get((channel, ts))
            if message is None:
                continue
            title = f"Slack #{message['channel_name']} (as posted, ts {ts})"
            console.print(Panel(render_blocks(message.get("blocks") or [], name_of), title=title))
    gids = [external_id for connector, external_id, _ in posted if connector == "asana"]
    if gids:
        tasks = {t["gid"]: t for t in _state(sandbox, "asana")["tasks"]}
        task = tasks.get(gids[0])
        if task is not None:
            console.print(_asana_task(task, len(gids)))


def _state(sandbox: Sandbox, provider: str) -> dict[str, Any]:
    """What one provider holds, through its inspection API."""
    client = SandboxClient(sandbox.origins[provider], verify=sandbox.ca_file)
    try:
        return client.state()
    finally:
        client.close()


def render_blocks(blocks: list[dict[str, Any]], name_of: Callable[[str], str]) -> Text:
    """Block Kit as terminal text: header bold, context dim, mentions and links resolved."""
    out = Text()
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            out.append(_unescape(block["text"]["text"]) + "\n", style="bold")
        elif kind == "divider":
            out.append("\n")
        elif kind == "section":
            for line in block["text"]["text"].split("\n"):
                bold = len(line) > 2 and line.startswith("*") and line.endswith("*")
                out.append(
                    _plain(line.strip("*") if bold else line, name_of) + "\n",
                    style="bold" if bold else "",
                )
        elif kind == "context":
            for element in block.get("elements", []):
                out.append(_plain(element.get("text", ""), name_of) + "\n", style="dim")
        elif kind == "actions":  # buttons (review), shown as [Label]
            labels = [(e.get("text") or {}).get("text", "") for e in block.get("elements", [])]
            out.append("  ".join(f"[{label}]" for label in labels if label) + "\n", style="bold")
    out.rstrip()
    return out


def _plain(mrkdwn: str, name_of: Callable[[str], str]) -> str:
    """Slack mrkdwn as plain text: `<@U…>` as @name, `<url|label>` as label (url), unescaped."""
    text = _MENTION.sub(lambda m: "@" + name_of(m.group(1)), mrkdwn)
    if not _LINK.search(text) and len(text) > _MAX_LINE:  # long CRM prose, not a link line
        text = text[: _MAX_LINE - 1] + "…"
    text = _LINK.sub(_link_text, text)
    return _unescape(text)


def _link_text(match: re.Match[str]) -> str:
    url, label = match.group(1), match.group(2)
    return url if label == "open" else f"{label} {url}"


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _asana_task(task: dict[str, Any], count: int) -> Panel:
    """One Asana task as Asana holds it: assignee, due date, where it lives, followers."""
    assignee = (task.get("assignee") or {}).get("name") or "unassigned"
    where = ", ".join(
        f"{m['project']['name']} / {m['section']['name']}" for m in task.get("memberships", [])
    )
    followers = ", ".join(f["name"] for f in task.get("followers", [])) or "—"
    body = Text()
    body.append(task["name"] + "\n", style="bold")
    body.append(f"assignee  {assignee}\ndue       {task.get('due_on') or '—'}\n")
    body.append(f"in        {where}\nfollowers {followers}\n")
    body.append(f"link      {task.get('permalink_url') or '—'}")
    return Panel(body, title=f"Asana task (1 of {count} from this meeting, as Asana holds it)")
