"""`meetsync meetings replan`: stored meetings planned again with the current mapping."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date, datetime
from typing import Annotated

import typer

from admin import replan as replanning
from cli.admin_session import admin_session

app = typer.Typer(no_args_is_help=True, help="Stored meetings: replan with the current mapping.")


@app.command("replan")
def replan(
    meetings: Annotated[
        list[str] | None, typer.Argument(help="meeting ids (stored or the notes pipeline's)")
    ] = None,
    org: Annotated[
        str | None, typer.Option(help="the org (with --since: all its meetings)")
    ] = None,
    since: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="meetings held since")
    ] = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="do it (without: a dry run that writes nothing)")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Plan meetings again with the org's current mapping; failed ops it changes go back
    in line with their stale reason cleared. A dry run unless --apply."""
    day: date | None = since.date() if since else None
    with admin_session() as (session, settings):
        ids = replanning.choose_meetings(session, refs=meetings, org_id=org, since=day)
        report = replanning.replan(session, settings, ids, apply=apply)
    sent = replanning.enqueue(settings, report.planned) if apply else "dry run: nothing written"
    if as_json:
        rows = [asdict(m) for m in report.meetings]
        typer.echo(json.dumps({"applied": apply, "meetings": rows, "pushes": sent}))
        return
    for m in report.meetings:
        version = f"mapping v{m.mapping_version}" if m.mapping_version else "no ops"
        typer.echo(f"{m.meeting_id}  {m.org_id}  {m.title}")
        if m.problem:
            typer.echo(f"  not planned: {m.problem}")
            continue
        typer.echo(
            f"  {version}: {len(m.new)} new, {len(m.changed)} to push, {m.unchanged} unchanged"
        )
        for key, reason in m.cleared.items():
            typer.echo(f"  {'clears' if not apply else 'cleared'} {key[:12]}: {reason[:100]}")
    total = sum(m.to_push for m in report.meetings)
    verb = "replanned" if apply else "would replan"
    typer.echo(f"{verb} {len(report.meetings)} meeting(s), {total} op(s) to push; {sent}")
    if not apply and report.meetings:
        typer.echo("run again with --apply to do it")
