"""Webhook latency at a fixed arrival rate, next to a bare FastAPI endpoint in the same run.

`python -m bench.webhook [--rate 200] [--seconds 10]` serves the real app (SQLite, stub
broker: the handler verifies, stores and enqueues; nothing consumes the queue) and a bare
endpoint that only reads the body, each in its own process, then sends signed deliveries
at an open-loop rate (arrivals do not wait for answers, so a slow server shows up as
latency, not as fewer requests). Ends with one JSON line:
{"rps", "p50_ms", "p99_ms", "bare_rps", "bare_p99_ms"}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

SECRET = "bench-secret"
CONNECTIONS = 32


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve_real(port: int, database_url: str) -> None:
    import uvicorn

    from intake.app import create_app
    from meetsync.bootstrap import ensure_org
    from meetsync.db.migrate import upgrade
    from meetsync.db.session import session_scope
    from meetsync.settings import Settings
    from workers.actors import declare
    from workers.broker import make_broker
    from workers.runtime import Runtime

    settings = Settings(mode="demo", database_url=database_url, webhook_secret=SECRET)
    upgrade(database_url)
    with session_scope(database_url) as session:
        ensure_org(session, "acme", "Acme")
    app = create_app(settings, declare(make_broker("stub"), Runtime(settings)))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def bare(request: Request) -> JSONResponse:
    """The floor: read the body, answer 202, nothing else."""
    await request.body()
    return JSONResponse({"status": "accepted"}, status_code=202)


def _serve_bare(port: int) -> None:
    import uvicorn

    app = FastAPI()
    app.post("/v1/webhooks/meeting-completed")(bare)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _body(i: int) -> bytes:
    meeting = {
        "org_id": "acme",
        "meeting_id": f"bench-{os.getpid()}-{i}",
        "title": f"Globex sync {i}",
        "start": "2026-11-20T15:00:00Z",
        "end": "2026-11-20T15:30:00Z",
        "attendees": [
            {"name": "Dana Reyes", "email": "dana@acme.io", "internal": True},
            {"name": "Hank Scorpio", "email": "hank@globex.com"},
        ],
        "transcript": [
            {"speaker": "Dana Reyes", "start": float(t), "text": f"Point {t} of the call."}
            for t in range(40)
        ],
    }
    return json.dumps(meeting, separators=(",", ":")).encode()


def _request(port: int, body: bytes, event_id: str) -> bytes:
    from intake.client import WEBHOOK_PATH, signed_headers

    headers = signed_headers(SECRET, body, event_id)
    lines = [f"POST {WEBHOOK_PATH} HTTP/1.1", f"host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


async def _load(port: int, rate: float, seconds: float, label: str) -> dict[str, float]:
    """Open loop on raw keep-alive connections: the client costs little next to the server."""
    total = int(rate * seconds)
    requests = [_request(port, _body(i), f"{label}-{os.getpid()}-{i}") for i in range(total)]
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(CONNECTIONS):
        idle.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def one(request: bytes) -> None:
        started = time.perf_counter()  # waiting for a free connection counts as latency
        reader, writer = await idle.get()
        status = await _exchange(reader, writer, request)
        latencies.append((time.perf_counter() - started) * 1000)
        statuses[status] = statuses.get(status, 0) + 1
        idle.put_nowait((reader, writer))

    for i in range(min(20, total)):  # warm up code paths (these meetings are not counted)
        await one(_request(port, _body(total + i), f"{label}-warm-{os.getpid()}-{i}"))
    latencies.clear()
    statuses.clear()
    began = time.perf_counter()
    tasks = []
    for i, request in enumerate(requests):
        delay = began + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(request)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    while not idle.empty():
        _, writer = idle.get_nowait()
        writer.close()
    latencies.sort()
    print(f"{label}: {statuses}", file=sys.stderr)
    return {
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)], 2),
    }


def _wait_up(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/openapi.json", timeout=1, trust_env=False)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not start")


def _profiler(pid: int | None, out: str, seconds: float) -> subprocess.Popen[bytes]:
    """py-spy on the real server: only threads holding the GIL, without pausing it."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command = [spy, "record", "--pid", str(pid), "--gil", "--nonblocking", "--threads"]
    command += ["--format", "speedscope", "-o", out, "--duration", str(int(seconds))]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="record the real server with py-spy (--gil --nonblocking) into FILE (speedscope)",
    )
    args = parser.parse_args(argv)
    workdir = tempfile.mkdtemp(prefix="meetsync-bench-")
    real_port, bare_port = _free_port(), _free_port()
    context = multiprocessing.get_context("spawn")
    real = context.Process(
        target=_serve_real, args=(real_port, f"sqlite:///{workdir}/bench.db"), daemon=True
    )
    bare = context.Process(target=_serve_bare, args=(bare_port,), daemon=True)
    real.start()
    bare.start()
    try:
        _wait_up(f"http://127.0.0.1:{real_port}")
        _wait_up(f"http://127.0.0.1:{bare_port}")
        spy = _profiler(real.pid, args.profile, args.seconds + 5) if args.profile else None
        measured = asyncio.run(_load(real_port, args.rate, args.seconds, "webhook"))
        if spy is not None:
            spy.wait(timeout=60)
        baseline = asyncio.run(_load(bare_port, args.rate, args.seconds, "bare"))
    finally:
        for process in (real, bare):
            process.terminate()
            process.join(timeout=10)
    result = {**measured, "bare_rps": baseline["rps"], "bare_p99_ms": baseline["p99_ms"]}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
