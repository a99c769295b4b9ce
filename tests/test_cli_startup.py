"""`meetsync` starts without the modules its subcommands drive (cli/lazy.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import typer.main

from cli import app
from cli.lazy import LAZY

HEAVY = ("openai", "workers.stages", "admin.backfill", "connectors.salesforce", "asana")


def test_the_command_line_loads_no_pipeline_module_before_a_command_runs() -> None:
    # given: a fresh interpreter that imports the entry point, as `meetsync worker` does
    probe = f"import cli, json, sys; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"

    # when
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout

    # expect: the worker's parent execs dramatiq having loaded none of them
    assert json.loads(loaded) == []


def test_every_lazy_command_resolves_with_its_help() -> None:
    group = typer.main.get_command(app)
    with typer.Context(group) as ctx:
        for name in LAZY:
            command = group.get_command(ctx, name)  # type: ignore[attr-defined]
            assert command is not None and command.name == name
            assert command.help  # the module's own help, shown by `meetsync --help`
