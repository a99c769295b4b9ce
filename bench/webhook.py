"""Webhook latency at a fixed arrival rate, next to a bare FastAPI endpoint in the same run.

`python -m bench.webhook [--rate 200] [--seconds 10] [--rounds 5] [--cpu-load N]` serves
the real app (SQLite, stub broker: the handler verifies, stores and enqueues; nothing
consumes the queue) and a bare endpoint that only reads the body, each in its own
process, and sends signed deliveries to each at an open-loop rate (`bench.load`). The
two take turns in `--rounds` slices, so both meet the machine's load alike; `--cpu-load N`
adds N busy processes for a loaded machine on purpose; `--database URL` measures on
PostgreSQL (an empty database: it is migrated). Ends with one JSON line:
{"rate", "rps", "p50_ms", "p99_ms", "bare_rps", "bare_p50_ms", "bare_p99_ms", "p99_ratio",
"cpu_load"}. The target: p99 ≤ 25 ms and within 5× of the bare endpoint's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bench.load import Run, cpu_load, free_port, paced, serve, stop, wait_up

SECRET = "bench-secret"
WARMUP = 20


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


def _request(port: int, i: int, label: str) -> bytes:
    """A signed delivery of meeting `i` (signed now: inside the replay window when sent)."""
    from intake.client import WEBHOOK_PATH, signed_headers

    body = _body(i)
    headers = signed_headers(SECRET, body, f"{label}-{os.getpid()}-{i}")
    lines = [f"POST {WEBHOOK_PATH} HTTP/1.1", f"host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _profiler(pid: int | None, out: str, seconds: float) -> subprocess.Popen[bytes]:
    """py-spy on the real server: only threads holding the GIL, without pausing it."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command = [spy, "record", "--pid", str(pid), "--gil", "--nonblocking", "--threads"]
    command += ["--format", "speedscope", "-o", out, "--duration", str(int(seconds))]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure(
    real_port: int, bare_port: int, rate: float, seconds: float, rounds: int
) -> tuple[Run, Run]:
    """The real app and the bare endpoint in turns, `seconds / rounds` each per round."""
    per_round = max(1, int(rate * seconds / rounds))
    real, floor = Run(), Run()
    for r in range(rounds):
        for port, run, label in ((real_port, real, "webhook"), (bare_port, floor, "bare")):
            first = r * per_round
            warmup = (
                [_request(port, -1 - w, f"{label}-warm") for w in range(WARMUP)] if r == 0 else []
            )
            batch = [_request(port, first + i, label) for i in range(per_round)]
            run.add(asyncio.run(paced(port, batch, rate, warmup)))
    return real, floor


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="per server, all rounds")
    parser.add_argument("--rounds", type=int, default=5, help="turns taken by the two servers")
    parser.add_argument("--cpu-load", type=int, default=0, metavar="N", help="N busy processes")
    parser.add_argument("--database", metavar="URL", help="instead of a fresh SQLite file")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="record the real server with py-spy (--gil --nonblocking) into FILE (speedscope)",
    )
    args = parser.parse_args(argv)
    workdir = tempfile.mkdtemp(prefix="meetsync-bench-")
    real_port, bare_port = free_port(), free_port()
    real = serve(_serve_real, real_port, args.database or f"sqlite:///{workdir}/bench.db")
    floor = serve(_serve_bare, bare_port)
    try:
        wait_up(f"http://127.0.0.1:{real_port}")
        wait_up(f"http://127.0.0.1:{bare_port}")
        spy = _profiler(real.pid, args.profile, 2 * args.seconds + 5) if args.profile else None
        with cpu_load(args.cpu_load):
            measured, baseline = measure(
                real_port, bare_port, args.rate, args.seconds, max(1, args.rounds)
            )
        if spy is not None:
            spy.wait(timeout=120)
    finally:
        stop(real, floor)
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"webhook: {measured.statuses}  bare: {baseline.statuses}", file=sys.stderr)
    ours, bare_floor = measured.summary(), baseline.summary()
    result = {
        "rate": args.rate,
        **ours,
        "bare_rps": bare_floor["rps"],
        "bare_p50_ms": bare_floor["p50_ms"],
        "bare_p99_ms": bare_floor["p99_ms"],
        "p99_ratio": round(ours["p99_ms"] / bare_floor["p99_ms"], 1)
        if bare_floor["p99_ms"]
        else None,
        "cpu_load": args.cpu_load,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
