"""Runs the emulators as real HTTP servers on loopback, each on its own port.

A config (a dict, or the YAML/JSON file `meetsync sandbox --config` reads) looks like:

    host: 127.0.0.1
    ports: {salesforce: 8701}          # 0 or absent: an ephemeral port
    only: [asana, slack]               # absent: every provider
    seed: 42                           # default seed of each provider's fault dice
    providers:
      asana:
        options: {requests_per_minute: 150}   # the emulator's constructor options
        seed: 7
        faults:                               # rules as in sandbox.faults
          - {kind: error, rate: 0.05, status: [500, 503], path: /api/1.0/tasks}

Faults from a config are the baseline: `reset()` comes back to them, dice rewound.
"""

from __future__ import annotations

import importlib
import logging
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from sandbox.base import ProviderApp
from sandbox.client import SandboxClient
from sandbox.tls import ensure_certificate

# provider name → (class path, path prefix the SDK expects, serves TLS)
PROVIDERS: dict[str, tuple[str, str, bool]] = {
    "salesforce": ("sandbox.salesforce:SalesforceSandbox", "", True),
    "asana": ("sandbox.asana:AsanaSandbox", "/api/1.0", False),
    "slack": ("sandbox.slack:SlackSandbox", "/api/", False),
    "openai": ("sandbox.openai_api:OpenAISandbox", "/v1", False),
}
DEFAULT_PORTS = {"salesforce": 8701, "asana": 8702, "slack": 8703, "openai": 8704}


def provider_class(name: str) -> type[ProviderApp]:
    """The emulator class of a provider, imported on demand."""
    module, _, attr = PROVIDERS[name][0].partition(":")
    cls: type[ProviderApp] = getattr(importlib.import_module(module), attr)
    return cls


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # runs in a thread; the host owns signals
        pass


class Sandbox:
    """All emulators, started together; `urls[name]` is each SDK's base URL."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        ports: dict[str, int] | None = None,
        world: dict[str, Any] | None = None,
        options: dict[str, dict[str, Any]] | None = None,
        cert_dir: Path | None = None,
        only: list[str] | None = None,
        faults: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.host = host
        self.ports = dict(ports) if ports is not None else {name: 0 for name in PROVIDERS}
        self.names = only or list(PROVIDERS)
        self.cert_file, self.key_file = ensure_certificate(
            cert_dir or Path(tempfile.gettempdir()) / "meetsync-sandbox-tls"
        )
        self.providers: dict[str, ProviderApp] = {
            name: provider_class(name)(world=world, **(options or {}).get(name, {}))
            for name in self.names
        }
        for name, spec in (faults or {}).items():
            if name not in self.providers:
                raise ValueError(f"faults for {name!r}, which this sandbox does not run")
            self.providers[name].configure_faults(
                spec.get("rules", []), spec.get("seed"), baseline=True
            )
        self.urls: dict[str, str] = {}
        self.origins: dict[str, str] = {}
        self._servers: list[tuple[_Server, threading.Thread]] = []

    @classmethod
    def from_config(cls, config: dict[str, Any], **overrides: Any) -> Sandbox:
        """A sandbox as a config (see the module docstring) describes it."""
        unknown = set(config) - {"host", "ports", "only", "seed", "providers"}
        if unknown:
            raise ValueError(f"unknown sandbox config keys: {', '.join(sorted(unknown))}")
        providers: dict[str, Any] = config.get("providers") or {}
        only: list[str] = list(config.get("only") or PROVIDERS)
        for name in [*providers, *only]:
            if name not in PROVIDERS:
                raise ValueError(f"unknown provider {name!r}; known: {', '.join(PROVIDERS)}")
        for name, spec in providers.items():
            extra = set(spec or {}) - {"options", "seed", "faults"}
            if extra:
                raise ValueError(f"{name}: unknown keys {', '.join(sorted(extra))}")
        specs = {name: providers.get(name) or {} for name in only}
        kwargs: dict[str, Any] = {
            "host": config.get("host", "127.0.0.1"),
            "ports": config.get("ports"),
            "only": only,
            "options": {name: dict(spec.get("options") or {}) for name, spec in specs.items()},
            "faults": {
                name: {
                    "rules": spec.get("faults") or [],
                    "seed": spec.get("seed", config.get("seed")),
                }
                for name, spec in specs.items()
            },
        }
        return cls(**{**kwargs, **overrides})

    @property
    def ca_file(self) -> str:
        return str(self.cert_file)

    def admin(self, name: str) -> SandboxClient:
        """The inspection and fault API of one running provider."""
        return SandboxClient(self.origins[name], verify=self.ca_file)

    def start(self, timeout: float = 10.0) -> Sandbox:
        for name in self.names:
            _, prefix, tls = PROVIDERS[name]
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # Accepted connections inherit this; without it keep-alive requests stall ~40 ms
            # on Nagle + delayed ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind((self.host, self.ports.get(name, 0)))
            port = sock.getsockname()[1]
            scheme = "https" if tls else "http"
            self.origins[name] = f"{scheme}://{self.host}:{port}"
            self.urls[name] = self.origins[name] + prefix
            config = uvicorn.Config(
                self.providers[name].app,
                log_level="warning",
                access_log=False,
                lifespan="off",
                ssl_certfile=str(self.cert_file) if tls else None,
                ssl_keyfile=str(self.key_file) if tls else None,
                timeout_keep_alive=30,
                timeout_graceful_shutdown=1,  # keep-alive clients must not hold up stop()
            )
            server = _Server(config)
            thread = threading.Thread(
                target=server.run, kwargs={"sockets": [sock]}, name=f"sandbox-{name}", daemon=True
            )
            thread.start()
            self._servers.append((server, thread))
        deadline = time.monotonic() + timeout
        while not all(s.started for s, _ in self._servers):
            if time.monotonic() > deadline:
                raise RuntimeError("sandbox servers did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        # Clients that keep connections alive (every SDK) make uvicorn log the forced
        # close as an error; closing an emulator under its clients is expected here.
        logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
        for server, _ in self._servers:
            server.should_exit = True
        for _, thread in self._servers:
            thread.join(timeout=5)
        self._servers.clear()

    def reset(self) -> None:
        for provider in self.providers.values():
            provider.reset()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
