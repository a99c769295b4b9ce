"""`meetsync dlq list|show|retry`: ops parked as dead letters, inspected and replayed."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cli.admin_session import admin_session
from meetsync.db.models import MappingVersion, OpRecord
from meetsync.settings import Settings

app = typer.Typer(
    no_args_is_help=True, help="Dead letters: failed, dead and paused ops, and failed meetings."
)
AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]
Org = Annotated[str | None, typer.Option(help="only this org")]
ConnectorName = Annotated[str | None, typer.Option("--connector", help="only this connector")]
State = Annotated[str | None, typer.Option(help="failed | dead | paused")]


@app.command("list")
def list_(
    org: Org = None,
    connector: ConnectorName = None,
    state: State = None,
    as_json: AsJson = False,
) -> None:
    """Dead letters, oldest first, with their reason; then the meetings that failed."""
    from workers.dead_letters import failed_meetings, list_dead

    with admin_session() as (session, _):
        found = list_dead(session, org=org, connector=connector, state=state)
        meetings = [] if connector or state else failed_meetings(session, org=org)
    if as_json:
        listed = [{"kind": "op", **vars(d)} for d in found]
        listed += [{"kind": "meeting", **vars(m)} for m in meetings]
        typer.echo(json.dumps(listed, default=str, indent=2))
        return
    for meeting in meetings:
        reason = (meeting.reason or "").splitlines()[0][:120] if meeting.reason else ""
        typer.echo(
            f"meeting {meeting.id}\tfailed\t{meeting.org_id}/{meeting.external_id}\t{reason}"
        )
    for letter in found:
        reason = (letter.reason or "").splitlines()[0][:120] if letter.reason else ""
        typer.echo(
            f"{letter.key}\t{letter.state}\t{letter.connector}/{letter.action}\t"
            f"attempts {letter.attempts}\t{reason}"
        )
    typer.echo(f"{len(found)} dead letter{'s' if len(found) != 1 else ''}", err=True)


@app.command("show")
def show(key: Annotated[str, typer.Argument(help="op key, or a unique prefix")]) -> None:
    """One op: state, reason, target, field names, receipt."""
    from workers.dead_letters import NoSuchOp, describe, get_op

    with admin_session() as (session, _):
        try:
            row = get_op(session, key)
        except NoSuchOp as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(json.dumps(describe(row), default=str, indent=2))


@app.command("retry")
def retry(
    keys: Annotated[list[str] | None, typer.Argument(help="op keys or unique prefixes")] = None,
    every: Annotated[
        bool, typer.Option("--all", help="every dead letter matching the filters")
    ] = False,
    org: Org = None,
    connector: ConnectorName = None,
    state: State = None,
    meetings: Annotated[
        list[str] | None, typer.Option("--meeting", help="a failed meeting to extract again")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Replay dead letters after a fix; an op that may have been written is found first."""
    from workers.dead_letters import NoSuchOp, get_op, list_dead, replay

    if meetings:
        _retry_meetings(meetings)
        if not keys and not every:
            return
    if not keys and not every:
        typer.echo("error: name op keys, or pass --all (with --org/--connector/--state)", err=True)
        raise typer.Exit(2)
    with admin_session() as (session, settings):
        try:
            if every:
                chosen = [
                    get_op(session, d.key)
                    for d in list_dead(session, org=org, connector=connector, state=state)
                ]
            else:
                chosen = [get_op(session, key) for key in keys or []]
        except NoSuchOp as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        replayed = replay(session, chosen)
        stale = _planned_with_older_mappings(session, chosen)
    skipped = len(chosen) - len(replayed)
    _enqueue(settings, replayed)
    if as_json:
        typer.echo(
            json.dumps(
                {"replayed": [k for k, _ in replayed], "skipped": skipped, "older_mapping": stale}
            )
        )
        return
    if stale:
        typer.echo(
            f"note: {len(stale)} op(s) replay the payload planned with an older mapping; "
            "to send what the current mapping renders: meetsync meetings replan "
            + " ".join(sorted(set(stale.values())))
            + " --apply",
            err=True,
        )
    typer.echo(
        f"replayed {len(replayed)} op{'s' if len(replayed) != 1 else ''}"
        + (f"; {skipped} not dead letters, left as they are" if skipped else "")
    )


def _planned_with_older_mappings(session: Session, rows: list[OpRecord]) -> dict[str, str]:
    """Op key → meeting id of each op planned with a mapping version older than its org's."""
    orgs = {row.org_id for row in rows}
    current = dict(
        session.execute(
            select(MappingVersion.org_id, func.max(MappingVersion.version))
            .where(MappingVersion.org_id.in_(orgs))
            .group_by(MappingVersion.org_id)
        ).all()
    )
    return {
        row.key: row.meeting_id
        for row in rows
        if row.mapping_version is not None and row.mapping_version < current.get(row.org_id, 0)
    }


def _enqueue(settings: Settings, replayed: list[tuple[str, str]]) -> None:
    """Send each replayed op to its push queue; on the stub broker the server's sweeper does."""
    if not replayed:
        return
    if settings.broker_url == "stub":
        typer.echo(
            "the in-process broker lives in `meetsync serve`: its sweeper pushes these ops "
            f"within {settings.retry.stuck_after_s:.0f}s",
            err=True,
        )
        return
    from workers.actors import declare
    from workers.broker import make_broker
    from workers.runtime import Runtime

    pipeline = declare(make_broker(settings.broker_url), Runtime(settings))
    pipeline.enqueue_ops(key for key, _ in replayed)
    pipeline.broker.close()


def _retry_meetings(refs: list[str]) -> None:
    """Failed meetings back to extraction (the cache spares what had already finished)."""
    from workers.dead_letters import NoSuchOp, replay_meeting

    with admin_session() as (session, settings):
        try:
            rows = [replay_meeting(session, ref) for ref in refs]
        except NoSuchOp as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        again = [(row.id, row.org_id, row.source == "backfill") for row in rows]
    if settings.broker_url == "stub":
        typer.echo(
            "the in-process broker lives in `meetsync serve`: its sweeper extracts these "
            f"within {settings.retry.stuck_after_s:.0f}s",
            err=True,
        )
    else:
        from workers.actors import declare
        from workers.broker import make_broker
        from workers.runtime import Runtime

        pipeline = declare(make_broker(settings.broker_url), Runtime(settings))
        for meeting_id, org_id, backfill in again:
            pipeline.enqueue_extract(meeting_id, backfill=backfill, org=org_id)
        pipeline.broker.close()
    typer.echo(f"replayed {len(again)} meeting{'s' if len(again) != 1 else ''}")
