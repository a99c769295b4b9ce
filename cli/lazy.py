"""Subcommands imported when they run: `meetsync worker` starts without the admin modules.

Each command group (`orgs`, `mappings`, `backfill`, …) pulls in the parts of meetsync it
drives, and together they are most of it: importing them all made every `meetsync worker`
spend ~3 s of CPU before exec'ing dramatiq (which imports the pipeline again), so a
restarted or scaled-out worker took twice as long to take work. Listing the commands
(`--help`) still imports them all.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
import typer.core
import typer.main

# typer carries its own click (the private typer._click): its Context and Command are not
# the click package's, so they go untyped here
Command = Any

# command → "module:attribute", a Typer app (a group of commands) or a function (one)
LAZY: dict[str, str] = {
    "orgs": "cli.orgs:app",
    "connections": "cli.connections:app",
    "mappings": "cli.mappings:app",
    "dlq": "cli.dlq:app",
    "memory": "cli.memory:app",
    "experiments": "cli.experiments:app",
    "webhook": "cli.webhook:app",
    "meetings": "cli.meetings:app",
    "backfill": "cli.backfill:backfill",
    "eval": "cli.evaluation:evaluate",
}


class LazyGroup(typer.core.TyperGroup):
    """The root group: eager commands as typer builds them, the `LAZY` ones on demand."""

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY})

    def get_command(self, ctx: Any, cmd_name: str) -> Command | None:
        if cmd_name not in LAZY:
            return super().get_command(ctx, cmd_name)
        module, attribute = LAZY[cmd_name].split(":")
        return _command(cmd_name, getattr(importlib.import_module(module), attribute))


def _command(name: str, target: Any) -> Command:
    command: Command
    if isinstance(target, typer.Typer):
        command = typer.main.get_group(target)
    else:
        single = typer.Typer()
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command
