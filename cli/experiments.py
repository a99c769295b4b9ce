"""`meetsync experiments create|list|report|diff|stop|promote|rollback|defaults`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from admin import experiments
from admin.errors import Invalid
from cli.admin_session import admin_session, current_user, reported
from extraction.experiments.report import ExperimentReport

app = typer.Typer(no_args_is_help=True, help="A/B tests of models and prompts, judged by users.")
AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]
console = Console()


@app.command("create")
def create(file: Path, as_json: AsJson = False) -> None:
    """Start an experiment from a YAML/JSON spec; an existing name gets a new version."""
    with reported():
        try:
            data: Any = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise Invalid(f"cannot read {file}: {exc}") from exc
        if not isinstance(data, dict):
            raise Invalid(f"{file}: an experiment spec is a mapping")
    with admin_session() as (session, settings):
        out = experiments.create(session, data, settings.llm, current_user())
    if as_json:
        typer.echo(_json(out))
        return
    typer.echo(f"experiment {out.name} v{out.version} running on {out.task}")


@app.command("list")
def listing(as_json: AsJson = False) -> None:
    """Every experiment's newest version and state."""
    with admin_session() as (session, _):
        rows = experiments.listing(session)
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return
    for row in rows:
        stopped = f" stopped: {', '.join(row.stopped_arms)}" if row.stopped_arms else ""
        typer.echo(f"{row.name} v{row.version} {row.task} {row.state}{stopped}")


@app.command("report")
def report(name: str, as_json: AsJson = False) -> None:
    """Per arm: meetings, rating and approval rates with intervals, cost, latency, the test."""
    with admin_session() as (session, _):
        out = experiments.report(session, name)
    if as_json:
        typer.echo(out.model_dump_json(indent=2))
        return
    console.print(render(out))
    for arm in out.arms:
        if arm.stopped:
            console.print(f"[red]stopped[/] {arm.arm}: {arm.stopped}")


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _rate(rate: Any) -> str:
    if rate.rate is None:
        return "—"
    low, high = rate.ci95
    return f"{rate.rate:.1%} [{low:.1%}, {high:.1%}] n={rate.trials}"


def render(out: ExperimentReport) -> Table:
    """The report as one table, an arm per row."""
    table = Table(
        title=f"{out.name} v{out.version} ({out.task}, {out.state}); control {out.control}",
        caption=f"{out.test}, alpha {out.alpha}; n: per arm to detect the difference at 80 %",
    )
    for column in (
        "arm", "model@prompt", "meetings", "👍 rate [95 % CI]", "approved [95 % CI]",
        "edit/skip/expire", "errors", "drops/repairs", "cost p50/p95 $", "latency p50/p95 ms",
        "vs control",
    ):  # fmt: skip
        table.add_column(column)
    for arm in out.arms:
        versus = "; ".join(
            f"{c.metric} {c.diff:+.1%} p={c.p_value} "
            f"{'significant' if c.significant else 'n.s.'} n={c.needed_per_arm}"
            for c in arm.vs_control
            if c.diff is not None
        )
        table.add_row(
            arm.arm + (" (shadow)" if arm.shadow else ""),
            f"{arm.model}@{arm.prompt_version}",
            str(arm.meetings),
            _rate(arm.rating),
            _rate(arm.approval),
            f"{_pct(arm.edit_rate)}/{_pct(arm.skip_rate)}/{_pct(arm.expire_rate)}",
            f"{arm.errors} ({_pct(arm.error_rate)})",
            f"{arm.grounding_drops_per_meeting}/{arm.schema_repairs_per_meeting}",
            f"{arm.cost_usd['p50']}/{arm.cost_usd['p95']}",
            f"{arm.latency_ms['p50']}/{arm.latency_ms['p95']}",
            versus or "—",
        )
    return table


@app.command("diff")
def diff(name: str, meeting_id: str, as_json: AsJson = True) -> None:
    """One meeting's live output beside each shadow arm's (always JSON)."""
    with admin_session() as (session, _):
        out = experiments.diff(session, name, meeting_id)
    typer.echo(json.dumps(out, indent=2))


@app.command("stop")
def stop(name: str, as_json: AsJson = False) -> None:
    """End an experiment without promoting any arm."""
    with admin_session() as (session, _):
        out = experiments.stop(session, name)
    if as_json:
        typer.echo(_json(out))
        return
    typer.echo(f"experiment {out.name} stopped")


@app.command("promote")
def promote(name: str, arm: str, as_json: AsJson = False) -> None:
    """Make ARM its task's default (a new default version); the experiment ends."""
    with admin_session() as (session, _):
        out = experiments.promote(session, name, arm, current_user())
    if as_json:
        typer.echo(_json(out))
        return
    typer.echo(
        f"{out.task} default v{out.version}: {out.model}@{out.prompt_version} ({out.comment})"
    )


@app.command("rollback")
def rollback(
    task: str,
    to: Annotated[int | None, typer.Option(help="default version (0: settings)")] = None,
    as_json: AsJson = False,
) -> None:
    """Put TASK's default back to an earlier version (a new version copying it)."""
    with admin_session() as (session, settings):
        out = experiments.rollback(session, task, settings.llm, to, current_user())
    if as_json:
        typer.echo(_json(out))
        return
    typer.echo(
        f"{out.task} default v{out.version}: {out.model}@{out.prompt_version} ({out.comment})"
    )


@app.command("defaults")
def defaults(task: str, as_json: AsJson = False) -> None:
    """Every default version of TASK, oldest first."""
    with admin_session() as (session, _):
        rows = experiments.history(session, task)
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return
    for row in rows:
        typer.echo(f"v{row.version} {row.model}@{row.prompt_version} {row.comment or ''}")


def _json(out: Any) -> str:
    """A service's answer (a pydantic model or a dataclass) as JSON."""
    if hasattr(out, "model_dump_json"):
        return str(out.model_dump_json(indent=2))
    return json.dumps(vars(out), indent=2, default=str)
