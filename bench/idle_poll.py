"""What an idle `meetsync worker` costs: `python -m bench.idle_poll [--poll-ms 1000 100/off]`.

For each `broker_idle_poll_ms` (`/off`: without `broker_wakeups`), starts `meetsync worker
--processes 2 --threads 8` against a Redis server of its own (so other benches' commands
are not counted) and an empty database, waits for it to settle, then counts for
`--seconds`: Redis commands per second (the server's `total_commands_processed`) and the
workers' CPU (share of one core).
Prints one JSON line per setting.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from bench.chaos import fresh_database
from bench.chaos_services import MEETSYNC, clean_env, free_port
from bench.pipeline import group_cpu_s
from meetsync.db.migrate import upgrade


def measure(setting: str, database_url: str, workdir: Path, seconds: float) -> dict[str, Any]:
    poll_ms, _, off = setting.partition("/")
    port = free_port()
    server = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(port), "--save", "",
         "--appendonly", "no", "--bind", "127.0.0.1", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    env = {
        **clean_env(),
        "MEETSYNC_MODE": "demo",
        "MEETSYNC_DATABASE_URL": database_url,
        "MEETSYNC_BROKER_URL": url,
        "MEETSYNC_REDIS_URL": url,
        "MEETSYNC_BROKER_IDLE_POLL_MS": poll_ms,
        "MEETSYNC_BROKER_WAKEUPS": "false" if off else "true",
        "MEETSYNC_LOG_LEVEL": "WARNING",
        "dramatiq_prom_db": str(workdir / f"prom-{poll_ms}{off}"),
    }
    worker = subprocess.Popen(
        [MEETSYNC, "worker", "--processes", "2", "--threads", "8"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / f"worker-{poll_ms}{off}.log", "wb"),  # noqa: SIM115
        start_new_session=True,
    )
    try:
        time.sleep(12)  # boot, migrations, first back-offs
        cpu0, cmds0, t0 = group_cpu_s([worker.pid]), _commands(client), time.monotonic()
        time.sleep(seconds)
        cpu1, cmds1, t1 = group_cpu_s([worker.pid]), _commands(client), time.monotonic()
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        server.terminate()
        server.wait(timeout=10)
    took = t1 - t0
    return {
        "broker_idle_poll_ms": int(poll_ms),
        "broker_wakeups": not off,
        "redis_cmds_per_s": round((cmds1 - cmds0) / took, 1),
        "worker_cpu_share": round((cpu1 - cpu0) / took, 4),
    }


def _commands(client: redis.Redis) -> int:
    return int(client.info("stats")["total_commands_processed"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--poll-ms", nargs="+", default=["1000/off", "1000", "100/off"])
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="meetsync-idle-"))
    with fresh_database(f"meetsync_idle_{os.getpid()}", keep=False) as database_url:
        upgrade(database_url)
        for poll_ms in args.poll_ms:
            print(json.dumps(measure(poll_ms, database_url, workdir, args.seconds)), flush=True)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
