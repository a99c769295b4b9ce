"""`meetsync sandbox`: the emulators, with limits and faults from a file, until interrupted."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from sandbox.server import DEFAULT_PORTS, Sandbox


def read_config(config_file: str | None) -> dict[str, Any]:
    """The sandbox config (see sandbox.server) in a YAML or JSON file; {} without one."""
    if not config_file:
        return {}
    text = Path(config_file).read_text()
    data = yaml.safe_load(text) if config_file.endswith((".yaml", ".yml")) else json.loads(text)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{config_file}: expected a mapping at the top level")
    return data


def sandbox_from(config: dict[str, Any]) -> Sandbox:
    """The sandbox a config describes, on the default ports unless it names others."""
    return Sandbox.from_config({**config, "ports": {**DEFAULT_PORTS, **config.get("ports", {})}})


def run_sandbox(config_file: str | None) -> None:
    """Serve until SIGINT or SIGTERM, printing each provider's base URL."""
    console = Console()
    with sandbox_from(read_config(config_file)) as sandbox:
        for name, url in sandbox.urls.items():
            rules = sandbox.providers[name].faults.describe()["rules"]
            faults = f"  ({len(rules)} fault rules)" if rules else ""
            console.print(f"[bold]{name:<11}[/] {url}{faults}")
        console.print(f"TLS certificate (Salesforce): {sandbox.ca_file}")
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        stop.wait()
