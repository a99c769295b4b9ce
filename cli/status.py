"""`meetsync status …`: what the pipeline holds, what it spent, how the throttles stand."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from meetsync.settings import get_settings

status_app = typer.Typer(
    invoke_without_command=True, help="Meetings, ops, LLM spend and throttles, right now."
)
JsonFlag = Annotated[bool, typer.Option("--json", help="print JSON instead of tables")]


@status_app.callback()
def overview(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Meetings and ops by state, paused connections, and LLM spend per org."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"json": as_json}  # `status --json throttles` means JSON too
        return
    from meetsync.db.session import session_scope
    from meetsync.pipeline_status import pipeline_status
    from meetsync.usage import spend_by_org

    settings = get_settings()
    with session_scope(settings.database_url) as session:
        report = pipeline_status(session)
        report["spend"] = spend_by_org(session, settings.llm.prices)
    if as_json:
        typer.echo(json.dumps(report))
        return
    console = Console()
    console.print(_table("meetings", report["meetings"], ["org_id", "status", "count"]))
    console.print(_table("ops", report["ops"], ["org_id", "connector", "state", "count"]))
    if report["failed_meetings"]:
        console.print(
            _table("failed meetings", report["failed_meetings"], ["org_id", "reason", "count"])
        )
    if report["paused_connections"]:
        console.print(
            _table(
                "paused connections",
                report["paused_connections"],
                ["name", "org_id", "status", "reason"],
            )
        )
    console.print(
        _table(
            "LLM spend",
            report["spend"],
            ["org_id", "model", "calls", "input_tokens", "output_tokens", "usd"],
        )
    )


@status_app.command("throttles")
def throttles(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Tokens, slots, waits and cooldowns of every provider bucket."""
    from workers.throttle.status import render, throttle_status

    as_json = as_json or bool((ctx.obj or {}).get("json"))
    rows = throttle_status(get_settings())
    if as_json:
        typer.echo(json.dumps(rows))
        return
    Console().print(render(rows))


def _table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> Table:
    table = Table(*columns, title=title)
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in columns))
    if not rows:
        table.add_row(*(["—"] * len(columns)))
    return table
