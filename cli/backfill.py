"""`meetsync backfill`: past meetings from a source through the pipeline, or a dry run of it."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from meetsync.settings import Settings, get_settings

if TYPE_CHECKING:  # the run's modules load the whole pipeline: imported when it runs, so
    # every other command (`meetsync worker` first) starts without them
    from admin.backfill import Backfill, Outcome, Summary
    from admin.backfill_preview import Change
    from admin.sources import Window

SHOWN_PER_DESTINATION = 20
POLL_S = 0.5
console = Console(stderr=True)


def _providers(values: list[str] | None) -> list[str] | None:
    names = sorted({p.strip() for v in values or [] for p in v.split(",") if p.strip()})
    return names or None


def backfill(
    org: Annotated[str, typer.Option(help="the org whose meetings to backfill")],
    since: Annotated[str, typer.Option(help="first meeting start, a date or ISO time (UTC)")],
    until: Annotated[str | None, typer.Option(help="meetings starting before this")] = None,
    source: Annotated[
        str, typer.Option(help="stored | file:PATH | notes-api[:URL] | a plugin's name")
    ] = "stored",
    providers: Annotated[
        list[str] | None, typer.Option(help="only these connectors (comma-separated or repeated)")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="extract and preview; write nothing")
    ] = False,
    max_rate: Annotated[float | None, typer.Option(help="meetings a second, at most")] = None,
    budget_usd: Annotated[float | None, typer.Option(help="LLM spend limit of the run")] = None,
    report: Annotated[Path | None, typer.Option(help="write a .json or .csv report here")] = None,
    restart: Annotated[bool, typer.Option(help="ignore the stored cursor; start over")] = False,
    wait: Annotated[bool, typer.Option(help="wait until the pipeline finished the run")] = True,
    threads: Annotated[int, typer.Option(help="worker threads (stub broker only)")] = 4,
    details: Annotated[
        bool, typer.Option("--details", help="a dry run's every field, not the summary")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Backfill past meetings; a rerun resumes where an interrupted one stopped."""
    from admin.backfill import parse_day
    from admin.backfill_preview import DryRun
    from admin.backfill_report import report_data, write_report
    from admin.sources import SourceError, Window, open_source

    settings = get_settings()
    try:
        window = Window(org, parse_day(since), parse_day(until) if until else None)
        src = open_source(source, settings)
    except (ValueError, SourceError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    chosen = _providers(providers)
    try:
        if dry_run:
            preview = DryRun(settings, src, window, chosen, budget_usd)
            summary = _with_bar(preview.run, src.count(window), "previewing")
            if as_json:
                pass
            elif details:
                _print_changes(preview.changes)
            else:
                _print_change_summary(preview.changes, report)
            changes = preview.changes
        else:
            summary = _real_run(
                settings, src, window, chosen, budget_usd, max_rate, restart, wait, threads
            )
            changes = []
    except (LookupError, SourceError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(report_data(summary, changes, dry_run), default=str))
    else:
        _print_summary(summary, dry_run)
    if report is not None:
        write_report(report, summary, changes, dry_run)
        console.print(f"report: {report}")
    if summary.state == "budget_reached":
        raise typer.Exit(3)


def _with_bar(run: Any, total: int | None, label: str) -> Summary:
    with _progress() as progress:
        task = progress.add_task(label, total=total, rate="")
        summary: Summary = run(lambda outcome: _advance(progress, task, outcome))
    return summary


def _advance(progress: Progress, task: TaskID, outcome: Outcome) -> None:
    progress.advance(task)
    if outcome.kind in {"bad", "failed"}:
        progress.console.print(f"[yellow]skipped[/] {outcome.ref}: {outcome.reason}")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<11}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        refresh_per_second=4,
    )


def _real_run(
    settings: Settings,
    src: Any,
    window: Window,
    providers: list[str] | None,
    budget_usd: float | None,
    max_rate: float | None,
    restart: bool,
    wait: bool,
    threads: int,
) -> Summary:
    from admin.backfill import Backfill
    from cli.serve import prepare

    prepare(settings)
    workers, pipeline = _pipeline(settings, threads)
    job = Backfill(settings, src, window, pipeline, providers, budget_usd, max_rate, restart)
    job.hold = _live_hold(pipeline)
    try:
        summary = job.begin()
        if summary.resumed_from is not None:
            console.print(
                f"resuming run {job.key[:8]} after {summary.resumed_from}; "
                f"{summary.recovered} unfinished meeting(s) enqueued again"
            )
        with _progress() as progress:
            done_so_far = sum(summary.counts.values())
            read = progress.add_task(
                "read", total=src.count(window), completed=done_so_far, rate=""
            )
            processed = progress.add_task("processed", total=None, rate="")

            polled = [0.0]

            def seen(outcome: Outcome) -> None:
                _advance(progress, read, outcome)
                _show_rate(progress, read)
                if time.monotonic() - polled[0] > POLL_S:  # the database, not every record
                    polled[0] = time.monotonic()
                    _poll(progress, processed, job)

            job.run(summary, seen)
            while wait and summary.state == "read":
                finished, touched = _poll(progress, processed, job)
                if finished >= touched:
                    job.finish(summary)
                    break
                time.sleep(POLL_S)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: run the same command again to resume")
        raise typer.Exit(130) from None
    finally:
        if workers is not None:
            workers.stop()
    return summary


def _pipeline(settings: Settings, threads: int) -> tuple[Any, Any]:
    """The embedded stub broker needs its workers in this process; a real broker does not."""
    if settings.broker_url == "stub":
        from workers.inprocess import InProcessWorkers

        workers = InProcessWorkers(settings, threads=threads)
        return workers, workers.start()
    from workers.actors import declare
    from workers.broker import Yielding, make_broker
    from workers.runtime import Runtime

    broker = make_broker(settings.broker_url, backfill_yield=Yielding.of(settings))
    return None, declare(broker, Runtime(settings))


FEED_AHEAD = 8  # meetings queued for extraction ahead of the workers' trickle beside live work


def _live_hold(pipeline: Any) -> Any:
    """The feeder yields to live meetings as backfill consumers do (Redis broker only),
    keeping `FEED_AHEAD` meetings queued for the one a worker still runs beside them."""
    from workers.backlog import queued
    from workers.broker import LiveHold, WakingRedisBroker
    from workers.lanes import Lane

    broker = getattr(pipeline, "broker", None)
    if not isinstance(broker, WakingRedisBroker):
        return None
    hold, extracting = LiveHold(broker), Lane.BACKFILL.queue_name("extract")
    if broker.backfill_yield.live_inflight <= 0:
        return hold.ms

    def ms() -> int:
        if (queued(broker, extracting) or 0) < FEED_AHEAD:
            return 0
        return hold.ms()

    return ms


def _poll(progress: Progress, task: TaskID, job: Backfill) -> tuple[int, int]:
    finished, touched = job.progress()
    progress.update(task, completed=finished, total=max(touched, 1))
    _show_rate(progress, task)
    return finished, touched


def _show_rate(progress: Progress, task_id: TaskID) -> None:
    task = progress.tasks[task_id]
    speed = task.finished_speed or task.speed
    progress.update(task_id, rate=f"{speed:.1f}/s" if speed else "")


def _print_changes(changes: list[Change]) -> None:
    by_destination: dict[str, list[Change]] = defaultdict(list)
    for change in changes:
        if change.changes is not False:
            by_destination[change.destination].append(change)
    out = Console()
    if not by_destination:
        out.print("nothing would change")
    for destination, rows in sorted(by_destination.items()):
        table = Table(
            title=f"{destination}: {len(rows)} field(s) would change", title_justify="left"
        )
        for column in ("meeting", "write", "field", "current", "new"):
            table.add_column(column, overflow="fold")
        for row in rows[:SHOWN_PER_DESTINATION]:
            table.add_row(
                row.meeting_id,
                f"{row.action} {row.target} ({row.ledger})",
                row.field,
                _short(row.current),
                _short(row.new),
            )
        out.print(table)
        if len(rows) > SHOWN_PER_DESTINATION:
            out.print(f"… and {len(rows) - SHOWN_PER_DESTINATION} more (see --report)")


def _print_change_summary(changes: list[Change], report: Path | None) -> None:
    """One line per destination: how many writes, fields and meetings would change."""
    by_destination: dict[str, list[Change]] = defaultdict(list)
    for change in changes:
        if change.changes is not False:
            by_destination[change.destination].append(change)
    out = Console()
    if not by_destination:
        out.print("nothing would change")
        return
    out.print("would change:")
    for destination, rows in sorted(by_destination.items()):
        writes = len({(r.meeting_id, r.action, r.target) for r in rows})
        meetings = len({r.meeting_id for r in rows})
        out.print(
            f"  {destination}: {writes} write(s), {len(rows)} field(s), {meetings} meeting(s)"
        )
    where = f"in {report}" if report else "with --report FILE (CSV or JSON), or --details"
    out.print(f"every field, its current and new value: {where}")


def _short(value: Any, limit: int = 60) -> str:
    text = "—" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _print_summary(summary: Summary, dry_run: bool) -> None:
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(summary.counts.items())) or "no records"
    what = "dry run" if dry_run else f"run {summary.run_key[:8]}"
    Console().print(f"{what} {summary.state}: {counts}; LLM ${summary.spent_usd:.4f}")
