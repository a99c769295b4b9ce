"""The `meetsync` command line: one typer app, a module per command group."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from importlib.metadata import version as installed_version
from typing import Annotated, Any

import typer
import typer.core
from rich.console import Console

from cli.init import init
from cli.lazy import LazyGroup
from cli.status import status_app
from meetsync.settings import get_settings, masked

_option_type = typer.core.TyperOption.display_type_rich


def _flag_type(self: typer.core.TyperOption, ctx: Any) -> str | None:
    # typer's rich help labels every flag `<bool>`, beside --help too; a flag takes no value
    return None if self.is_flag else _option_type(self, ctx)


typer.core.TyperOption.display_type_rich = _flag_type  # type: ignore[method-assign,assignment]

app = typer.Typer(
    cls=LazyGroup,
    no_args_is_help=True,
    help="meetsync: finished meetings become follow-up work.",
)
config_app = typer.Typer(no_args_is_help=True, help="Inspect the effective settings.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(status_app, name="status")
app.command("init")(init)
console = Console()


def _version(shown: bool) -> None:
    if shown:
        typer.echo(f"meetsync {installed_version('meetsync')}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version")
    ] = False,
) -> None:
    """meetsync: finished meetings become follow-up work."""


@config_app.command("show")
def config_show() -> None:
    """Print the effective settings, secrets masked."""
    console.print_json(json.dumps(masked(get_settings())))


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument()] = "head",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Apply migrations up to REVISION."""
    from meetsync.db.migrate import upgrade

    settings = get_settings()
    upgrade(settings.database_url, revision)
    if as_json:
        typer.echo(json.dumps({"revision": revision}))
    else:
        console.print(f"database at [bold]{revision}[/]")


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    threads: Annotated[int, typer.Option(help="in-process worker threads (stub broker)")] = 4,
) -> None:
    """Run the HTTP API (and, on the stub broker, the workers in the same process)."""
    from cli.serve import run_server

    run_server(get_settings(), host, port, threads)


class WorkerLane(StrEnum):
    LIVE = "live"
    BACKFILL = "backfill"


@app.command()
def worker(
    processes: Annotated[int, typer.Option(help="worker processes")] = 2,
    threads: Annotated[int, typer.Option(help="threads per process")] = 4,
    queues: Annotated[
        list[str] | None,
        typer.Option("--queue", "-Q", help="run only this queue (repeat): one lane per pod"),
    ] = None,
    lane: Annotated[
        WorkerLane | None,
        typer.Option(help="run one lane's queues: live (all but backfill) or backfill"),
    ] = None,
    nice: Annotated[
        int,
        typer.Option(min=0, max=19, help="lower these processes' CPU priority (a backfill lane)"),
    ] = 0,
) -> None:
    """Run dramatiq workers for extract, plan and push.<connector> on the configured broker."""
    from cli.serve import run_workers

    if lane is not None:
        from workers.lanes import Lane, lane_queues

        queues = [*(queues or []), *lane_queues(Lane(lane))]
    raise typer.Exit(run_workers(get_settings(), processes, threads, queues, nice=nice))


@app.command()
def sandbox(
    config: Annotated[str | None, typer.Option(help="YAML/JSON file of limits and faults")] = None,
) -> None:
    """Run the Salesforce, Asana, Slack and OpenAI emulators on their default ports."""
    from cli.sandbox import run_sandbox

    run_sandbox(config)


@app.command()
def demo(
    keep: Annotated[bool, typer.Option(help="keep the demo database afterwards")] = False,
    serve: Annotated[
        bool, typer.Option(help="then keep the admin console up (with a token) until Ctrl-C")
    ] = False,
) -> None:
    """Run the whole pipeline on embedded defaults: no key, no server."""
    from cli.demo import run_demo

    run_demo(console, keep=keep, serve=serve)


def main() -> None:
    """The `meetsync` entry point: infrastructure errors end in one line, not a traceback."""
    from cli.infrastructure import explain, unreadable_settings

    try:
        app()
    except Exception as exc:
        try:
            line = explain(exc, get_settings())
        except Exception as unreadable:
            line = unreadable_settings(unreadable)
        if line is None:
            raise
        print(line, file=sys.stderr)
        raise SystemExit(1) from None
