"""The chaos harness's moving parts: a sandbox process, worker processes, service restarts."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from meetsync.settings import ConnectionSetting, Settings, process_env
from sandbox.server import PROVIDERS

MEETSYNC = str(Path(sys.executable).parent / "meetsync")
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")

# The emulators' own quotas lifted: the run measures correctness under faults, not limits.
OPTIONS: dict[str, dict[str, Any]] = {
    "salesforce": {"daily_api_limit": 10**12},
    "asana": {"requests_per_minute": 10**9, "concurrent_writes": 10**6},
    "slack": {"rate_limits": False},
    "openai": {"rpm": 10**9, "tpm": 10**12},
}


def fault_rules(scale: float = 1.0) -> list[dict[str, Any]]:
    """5% 5xx, 2% responses lost after the write, 1% timeouts, on every provider route."""
    return [
        {"kind": "error", "rate": 0.05 * scale, "status": [500, 502, 503]},
        {"kind": "lost_response", "rate": 0.02 * scale},
        {"kind": "timeout", "rate": 0.01 * scale, "hold": 3.0},
    ]


def clean_env() -> dict[str, str]:
    """This process's environment without proxies: loopback traffic must never leave."""
    return {k: v for k, v in os.environ.items() if k not in PROXY_VARS}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SandboxProcess:
    """`meetsync sandbox --config FILE` in its own process, so killing workers spares it."""

    workdir: Path
    seed: int
    faults: bool = True
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def origins(self) -> dict[str, str]:
        return {
            name: f"{'https' if PROVIDERS[name][2] else 'http'}://127.0.0.1:{port}"
            for name, port in self.ports.items()
        }

    @property
    def urls(self) -> dict[str, str]:
        return {name: origin + PROVIDERS[name][1] for name, origin in self.origins.items()}

    @property
    def ca_file(self) -> str:
        from meetsync.settings import SANDBOX_CERT

        return str(SANDBOX_CERT)

    def start(self) -> SandboxProcess:
        self.ports = {name: free_port() for name in PROVIDERS}
        rules = fault_rules() if self.faults else []
        config = {
            "ports": self.ports,
            "seed": self.seed,
            "providers": {
                name: {"options": OPTIONS.get(name, {}), "faults": rules} for name in PROVIDERS
            },
        }
        path = self.workdir / "sandbox.json"
        path.write_text(json.dumps(config))
        self.process = subprocess.Popen(
            [MEETSYNC, "sandbox", "--config", str(path)],
            env=clean_env(),
            stdout=subprocess.DEVNULL,
            stderr=open(self.workdir / "sandbox.log", "wb"),  # noqa: SIM115 - lives with the process
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while not self._ready():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"sandbox did not start; see {self.workdir / 'sandbox.log'}")
            time.sleep(0.2)
        return self

    def _ready(self) -> bool:
        try:
            for origin in self.origins.values():
                with httpx.Client(verify=False, trust_env=False, timeout=2) as http:
                    http.get(f"{origin}/_sandbox/faults").raise_for_status()
        except (httpx.HTTPError, OSError):
            return False
        return True

    def tls(self) -> ssl.SSLContext:
        """Trust the sandbox's self-signed certificate (Salesforce is served over TLS)."""
        return ssl.create_default_context(cafile=self.ca_file)

    def state(self, name: str) -> dict[str, Any]:
        """What provider `name` holds (tasks, records, messages)."""
        return self._admin(name, "state")

    def stats(self, name: str) -> dict[str, Any]:
        """Requests provider `name` answered, by endpoint; 429s served; faults injected."""
        return self._admin(name, "stats")

    def _admin(self, name: str, route: str) -> dict[str, Any]:
        with httpx.Client(verify=self.tls(), trust_env=False, timeout=60) as http:
            response = http.get(f"{self.origins[name]}/_sandbox/{route}")
            response.raise_for_status()
            data: dict[str, Any] = response.json()
            return data

    def set_latency(self, latency: dict[str, Any] | None) -> None:
        """Delay every request to every provider by `latency` (sandbox.faults), or stop."""
        rules = [{"kind": "latency", "latency": latency}] if latency else []
        with httpx.Client(verify=self.tls(), trust_env=False, timeout=10) as http:
            for origin in self.origins.values():
                http.put(f"{origin}/_sandbox/faults", json={"seed": self.seed, "rules": rules})

    def faults_injected(self) -> dict[str, Any]:
        injected: dict[str, Any] = {}
        with httpx.Client(verify=self.tls(), trust_env=False, timeout=10) as http:
            for name, origin in self.origins.items():
                injected[name] = http.get(f"{origin}/_sandbox/faults").json().get("injected")
        return injected

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def chaos_settings(
    sandbox: SandboxProcess, database_url: str, redis_url: str, public_base_url: str
) -> Settings:
    """Settings that point meetsync at the sandbox process, tuned to converge in minutes."""
    base = Settings(mode="demo")
    connections: dict[str, ConnectionSetting] = {}
    for name, conn in base.connections.items():
        options = dict(conn.options)
        if conn.provider == "salesforce":
            options["ca_file"] = sandbox.ca_file
        connections[name] = conn.model_copy(
            update={"base_url": sandbox.urls[conn.provider], "options": options}
        )
    return base.model_copy(
        update={
            "database_url": database_url,
            "broker_url": redis_url,
            "redis_url": redis_url,
            "public_base_url": public_base_url,
            "connections": connections,
            "sandbox_ca_file": sandbox.ca_file,
            "llm": base.llm.model_copy(update={"base_url": sandbox.urls["openai"]}),
        }
    )


# What the workers get beyond the connections: fast retries, short leases and sweeps, and
# throttle limits above what the run needs (the emulators' quotas are lifted too).
WORKER_TUNING = {
    "MEETSYNC_RETRY__MIN_BACKOFF_MS": "200",
    "MEETSYNC_RETRY__MAX_BACKOFF_MS": "4000",
    "MEETSYNC_RETRY__MAX_RETRIES": "12",
    "MEETSYNC_RETRY__LEASE_S": "30",
    "MEETSYNC_RETRY__BUSY_BACKOFF_MS": "1000",
    "MEETSYNC_RETRY__SWEEP_EVERY_S": "4",
    "MEETSYNC_RETRY__STUCK_AFTER_S": "15",
    "MEETSYNC_THROTTLE__CONNECTORS": json.dumps(
        {
            # concurrency counts the writes a request sends at once (an Asana batch's
            # five): 16 worker threads of five writes each stay under it
            n: {"rate": 500, "burst": 500, "concurrency": 256}
            for n in ("asana", "salesforce", "slack")
        }
    ),
    "MEETSYNC_THROTTLE__FLOWS": json.dumps({"slack": {"rate": 500, "burst": 500}}),
    # faults, not the LLM's token budget, are under test
    "MEETSYNC_THROTTLE__LLM_LIMITS": json.dumps({"*": {"rpm": 100_000, "tpm": 1e9}}),
    "MEETSYNC_LOG_LEVEL": "WARNING",
}


def worker_env(settings: Settings) -> dict[str, str]:
    """The settings a separate worker process needs, as MEETSYNC_* variables."""
    return {**clean_env(), **process_env(settings), **WORKER_TUNING}


@dataclass
class Workers:
    """`meetsync worker` processes, each its own process group, so SIGKILL takes it whole."""

    env: dict[str, str]
    logdir: Path
    count: int = 3
    threads: int = 4
    args: list[str] = field(default_factory=list)  # more `meetsync worker` options
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    kills: int = 0
    started: int = 0

    def start(self) -> None:
        while len(self.processes) < self.count:
            self.processes.append(self._spawn())

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.started += 1
        log = open(self.logdir / f"worker-{self.started}.log", "wb")  # noqa: SIM115
        return subprocess.Popen(
            [MEETSYNC, "worker", "--processes", "1", "--threads", str(self.threads), *self.args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill_one(self, rng: random.Random) -> None:
        """SIGKILL a random worker (its dramatiq parent and child at once), start another."""
        victim = rng.choice(self.processes)
        with _quiet():
            os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        self.kills += 1
        self.processes.remove(victim)
        self.processes.append(self._spawn())

    def revive(self) -> None:
        """Replace any worker that exited on its own (a broker or database outage)."""
        for proc in [p for p in self.processes if p.poll() is not None]:
            self.processes.remove(proc)
            self.processes.append(self._spawn())

    def stop(self) -> None:
        for proc in self.processes:
            with _quiet():
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with _quiet():
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.processes.clear()


class _quiet:
    """Ignore a process that is already gone."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> bool:
        return kind is not None and issubclass(kind, ProcessLookupError)


def restart_redis() -> None:
    """Stop Redis without saving (every queued message is lost) and start it again."""
    subprocess.run(["redis-cli", "shutdown", "nosave"], check=False, capture_output=True)
    subprocess.run(
        [
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "-::1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            "/var/lib/redis",
            "--logfile",
            "/var/log/redis/ci.log",
        ],
        check=True,
        capture_output=True,
    )
    _wait_for(
        lambda: subprocess.run(["redis-cli", "ping"], capture_output=True).stdout.strip() == b"PONG"
    )


def restart_postgres() -> None:
    """Restart the PostgreSQL cluster: every open connection breaks."""
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    pg_ctl = shutil.which("pg_ctlcluster") or "pg_ctlcluster"
    subprocess.run(
        [pg_ctl, "--skip-systemctl-redirect", version, "main", "restart"],
        check=True,
        capture_output=True,
    )


def _wait_for(ready: Any, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError("service did not come back")
        time.sleep(0.2)
