"""Sandbox capacity: simple writes per second each emulator sustains on one core.

The sandbox runs in its own process pinned to one core (`taskset -c 0`), with the
emulators' own rate limits lifted. The load comes from other processes pinned to the
remaining cores: each keeps one write in flight on each of its keep-alive connections,
sending pre-encoded requests over raw sockets from one selector loop, so the client side
costs tens of microseconds a request and no process switch. Providers are
measured one after the other; the sandbox process's CPU time is reported beside each
figure so a client-bound or CPU-starved run shows itself (server CPU well under 100%),
with writes per CPU-second of the sandbox: what one whole core sustains.

    python -m bench.sandbox [--seconds 5] [--connections 32] [--clients N] [--providers asana,slack]

Ends with one JSON line: {"writes_per_s": {"salesforce": …, "asana": …, …}, …}.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import selectors
import shutil
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from typing import Any
from urllib.parse import urlsplit

import httpx

SALESFORCE_APP = {
    "client_id": "sandbox-client",
    "client_secret": "sandbox-secret",
    "refresh_token": "sandbox-refresh-acme",
}
ASANA_TOKEN = "sandbox-asana-token"
SLACK_TOKEN = "xoxb-sandbox-acme"
# Limits lifted so the figure is the emulator's speed, not its configured quota.
OPTIONS: dict[str, dict[str, Any]] = {
    "salesforce": {"daily_api_limit": 10**12, **SALESFORCE_APP},
    "asana": {"requests_per_minute": 10**9, "concurrent_writes": 10**6},
    "slack": {"rate_limits": False, "token": SLACK_TOKEN},
    "openai": {"rpm": 10**9, "tpm": 10**12},
}


@dataclass(frozen=True)
class Write:
    """One pre-encoded HTTP request and where to send it."""

    provider: str
    host: str
    port: int
    tls: bool
    ca_file: str
    payload: bytes


# -- the sandbox process ------------------------------------------------------------
def serve(names: list[str]) -> None:
    """Child side: run the importable emulators, print their origins, live until stdin ends."""
    from sandbox.server import Sandbox, provider_class

    usable, broken = [], {}
    for name in names:
        try:
            provider_class(name)
            usable.append(name)
        except (ImportError, AttributeError) as exc:
            broken[name] = f"{type(exc).__name__}: {exc}"
    sandbox = Sandbox(only=usable, options={n: OPTIONS[n] for n in usable}).start()
    print(json.dumps({"origins": sandbox.origins, "ca_file": sandbox.ca_file, "broken": broken}))
    sys.stdout.flush()
    sys.stdin.read()
    sandbox.stop()


def start_sandbox(names: list[str], pin: bool) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """The sandbox in a child process, on core 0 when `pin`; its origins and CA file."""
    command = [sys.executable, "-m", "bench.sandbox", "--serve", ",".join(names)]
    if pin:
        command = ["taskset", "-c", "0", *command]
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line:
        raise RuntimeError("the sandbox process exited before it started")
    return child, json.loads(line)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its threads, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- what a simple write is, per provider -----------------------------------------------
def prepare(name: str, origin: str, ca_file: str) -> Write:
    """Fetch whatever the write needs (a token, a workspace) and encode it once."""
    tls = ssl.create_default_context(cafile=ca_file)
    with httpx.Client(base_url=origin, verify=tls, trust_env=False, timeout=10) as http:
        if name == "salesforce":
            token = http.post(
                "/services/oauth2/token", data={"grant_type": "refresh_token"} | SALESFORCE_APP
            )
            token.raise_for_status()
            path = "/services/data/v62.0/sobjects/Task"
            auth = token.json()["access_token"]
            body: dict[str, Any] = {"Subject": "Bench follow-up", "Priority": "Normal"}
        elif name == "asana":
            auth = ASANA_TOKEN
            workspaces = http.get(
                "/api/1.0/workspaces", headers={"Authorization": f"Bearer {auth}"}
            )
            workspaces.raise_for_status()
            path = "/api/1.0/tasks"
            body = {
                "data": {
                    "name": "Bench follow-up",
                    "workspace": workspaces.json()["data"][0]["gid"],
                }
            }
        elif name == "slack":
            auth, path = SLACK_TOKEN, "/api/chat.postMessage"
            body = {"channel": "sales-meetings", "text": "Bench recap"}
        else:
            auth, path = "sk-bench", "/v1/chat/completions"
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]}
    url = urlsplit(origin)
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {auth}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    write = Write(
        name,
        url.hostname or "",
        url.port or 0,
        url.scheme == "https",
        ca_file,
        head.encode() + data,
    )
    status, answer = Connection(write).send()
    if not 200 <= status < 300 or b'"ok":false' in answer:
        raise RuntimeError(f"{name}: a simple write answered {status}: {answer[:300]!r}")
    return write


# -- the load generator -------------------------------------------------------------------
class Connection:
    """One keep-alive connection that sends the same request and parses whole answers."""

    def __init__(self, write: Write) -> None:
        raw = socket.create_connection((write.host, write.port))
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if write.tls:
            context = ssl.create_default_context(cafile=write.ca_file)
            raw = context.wrap_socket(raw, server_hostname=write.host)
        self.sock = raw
        self.payload = write.payload
        self.buffer = b""

    def send(self) -> tuple[int, bytes]:
        """One request, blocking until its whole answer is in."""
        self.sock.sendall(self.payload)
        while (answer := self.answer()) is None:
            self.read()
        return answer

    def read(self) -> None:
        chunk = self.sock.recv(65536)
        # TLS may hold decrypted bytes the selector cannot see.
        while isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            chunk += self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the sandbox closed the connection")
        self.buffer += chunk

    def answer(self) -> tuple[int, bytes] | None:
        """The status and body of the answer in the buffer, once it is complete."""
        head, found, rest = self.buffer.partition(b"\r\n\r\n")
        if not found:
            return None
        length = 0
        for line in head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == b"content-length":
                length = int(value)
        if len(rest) < length:
            return None
        self.buffer = rest[length:]
        return int(head[9:12]), rest[:length]


def drive(
    write: Write,
    connections: int,
    cores: list[int],
    go: Event,
    window: Any,  # a shared array: (start, end) of the measured window, set before `go`
    out: Any,
) -> None:
    """Client process: keep one write in flight per connection; count answers in the window."""
    if cores:
        os.sched_setaffinity(0, cores)
    selector = selectors.DefaultSelector()
    for _ in range(connections):
        connection = Connection(write)
        selector.register(connection.sock, selectors.EVENT_READ, connection)
    out.put("ready")
    go.wait()
    start, end = window
    done = failed = 0
    for key in selector.get_map().values():
        key.data.sock.sendall(write.payload)
    while time.monotonic() < end:
        for key, _ in selector.select(timeout=1.0):
            connection = key.data
            connection.read()
            answer = connection.answer()
            if answer is None:
                continue
            if time.monotonic() >= start:
                if 200 <= answer[0] < 300:
                    done += 1
                else:
                    failed += 1
            connection.sock.sendall(write.payload)
    out.put((done, failed))


def measure(
    write: Write, load: tuple[int, int], seconds: float, warmup: float, pid: int, cores: list[int]
) -> dict[str, Any]:
    """Writes per second one provider sustains, and the sandbox's CPU use meanwhile."""
    ctx = mp.get_context("spawn")  # forking a process that runs server threads is unsafe
    go, out, window = ctx.Event(), ctx.Queue(), ctx.Array("d", 2)
    clients, connections = load
    shares = [connections // clients + (i < connections % clients) for i in range(clients)]
    workers = [
        ctx.Process(target=drive, args=(write, share, cores, go, window, out))
        for share in shares
        if share
    ]
    for worker in workers:
        worker.start()
    for _ in workers:
        if out.get(timeout=60) != "ready":
            raise RuntimeError("a client process failed to connect")
    window[:] = [time.monotonic() + warmup, time.monotonic() + warmup + seconds]
    go.set()
    time.sleep(max(0.0, window[0] - time.monotonic()))
    cpu_start = cpu_seconds(pid)
    time.sleep(max(0.0, window[1] - time.monotonic()))
    cpu_used = cpu_seconds(pid) - cpu_start
    results = [out.get(timeout=30) for _ in workers]
    for worker in workers:
        worker.join()
    done = sum(r[0] for r in results)
    return {
        "writes_per_s": round(done / seconds),
        "failed": sum(r[1] for r in results),
        "server_cpu": round(cpu_used / seconds, 2),
        # What one whole core would sustain: steady on a machine others are loading too.
        "writes_per_cpu_s": round(done / cpu_used) if cpu_used else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured time per provider")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections")
    parser.add_argument("--clients", type=int, help="client processes (default: a core each)")
    parser.add_argument("--providers", default=",".join(OPTIONS))
    parser.add_argument("--no-pin", action="store_true", help="let the sandbox use every core")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve.split(","))
        return
    names = [n for n in args.providers.split(",") if n]
    cores = sorted(os.sched_getaffinity(0))
    pin = not args.no_pin and shutil.which("taskset") is not None and len(cores) > 1
    client_cores = [c for c in cores if c != 0] if pin else []
    clients = args.clients or max(1, len(client_cores) if pin else len(cores) - 1)
    child, started = start_sandbox(names, pin)
    results: dict[str, dict[str, Any]] = {}
    try:
        for name, error in started["broken"].items():
            print(f"{name:<11} skipped: {error}", file=sys.stderr)
        for name in names:
            if name not in started["origins"]:
                continue
            try:
                write = prepare(name, started["origins"][name], started["ca_file"])
            except (RuntimeError, httpx.HTTPError, KeyError) as exc:
                print(f"{name:<11} skipped: {exc}", file=sys.stderr)
                continue
            results[name] = measure(
                write,
                (clients, args.connections),
                args.seconds,
                args.warmup,
                child.pid,
                client_cores,
            )
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=10)
    where = "sandbox on core 0, clients on " + (
        ",".join(map(str, client_cores)) if pin else "any core"
    )
    header = f"{'provider':<11} {'writes/s':>9} {'failed':>7} {'server cpu':>11} {'per cpu-s':>10}"
    print(f"{header}   ({where})")
    for name, figures in results.items():
        rate, failed, cpu = figures["writes_per_s"], figures["failed"], figures["server_cpu"]
        print(f"{name:<11} {rate:>9} {failed:>7} {cpu:>10.0%} {figures['writes_per_cpu_s']:>10}")
    print(
        json.dumps(
            {
                "writes_per_s": {n: r["writes_per_s"] for n, r in results.items()},
                "server_cpu": {n: r["server_cpu"] for n, r in results.items()},
                "writes_per_cpu_s": {n: r["writes_per_cpu_s"] for n, r in results.items()},
                "pinned_to_one_core": pin,
                "connections": args.connections,
                "client_processes": clients,
                "seconds": args.seconds,
            }
        )
    )


if __name__ == "__main__":
    main()
