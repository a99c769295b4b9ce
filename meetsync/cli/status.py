"""`meetsync status …`: what the workers are doing right now."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from meetsync.settings import get_settings

status_app = typer.Typer(no_args_is_help=True, help="What the workers are doing right now.")


@status_app.command("throttles")
def throttles(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Tokens, slots, waits and cooldowns of every provider bucket."""
    from workers.throttle_status import render, throttle_status

    rows = throttle_status(get_settings())
    if as_json:
        typer.echo(json.dumps(rows))
        return
    Console().print(render(rows))
