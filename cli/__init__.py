"""The `meetsync` command line: one typer app, a module per command group."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from cli import backfill, connections, dlq, experiments, mappings, orgs
from cli.evaluation import evaluate
from cli.status import status_app
from meetsync.settings import get_settings, masked

app = typer.Typer(no_args_is_help=True, help="meetsync: finished meetings become follow-up work.")
config_app = typer.Typer(no_args_is_help=True, help="Inspect the effective settings.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(orgs.app, name="orgs")
app.add_typer(connections.app, name="connections")
app.add_typer(mappings.app, name="mappings")
app.add_typer(dlq.app, name="dlq")
app.add_typer(experiments.app, name="experiments")
app.add_typer(status_app, name="status")
app.command("backfill")(backfill.backfill)
console = Console()


@config_app.command("show")
def config_show() -> None:
    """Print the effective settings, secrets masked."""
    console.print_json(json.dumps(masked(get_settings())))


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION."""
    from meetsync.db.migrate import upgrade

    settings = get_settings()
    upgrade(settings.database_url, revision)
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


@app.command()
def worker(
    processes: Annotated[int, typer.Option(help="worker processes")] = 2,
    threads: Annotated[int, typer.Option(help="threads per process")] = 4,
) -> None:
    """Run dramatiq workers for extract, plan and push.<connector> on the configured broker."""
    from cli.serve import run_workers

    raise typer.Exit(run_workers(get_settings(), processes, threads))


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
) -> None:
    """Run the whole pipeline on embedded defaults: no key, no server."""
    from cli.demo import run_demo

    run_demo(console, keep=keep)


app.command("eval")(evaluate)


def main() -> None:
    app()
