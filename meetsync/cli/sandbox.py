"""`meetsync sandbox`: the emulators on their default ports until interrupted."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from sandbox.server import DEFAULT_PORTS, Sandbox


def run_sandbox(config_file: str | None) -> None:
    config: dict[str, Any] = {}
    if config_file:
        text = Path(config_file).read_text()
        config = (
            yaml.safe_load(text) if config_file.endswith((".yaml", ".yml")) else json.loads(text)
        )
    ports = {**DEFAULT_PORTS, **config.get("ports", {})}
    console = Console()
    with Sandbox(ports=ports, options=config.get("providers", {})) as sandbox:
        for name, url in sandbox.urls.items():
            console.print(f"[bold]{name:<11}[/] {url}")
        console.print(f"TLS certificate (Salesforce): {sandbox.ca_file}")
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        stop.wait()
