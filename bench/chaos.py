"""Chaos harness: meetings through Redis, PostgreSQL and worker processes under faults.

    python -m bench.chaos --meetings 1000 [--workers 3] [--seed 7] [--no-restarts]

A sandbox process serves the providers with faults on (5% 5xx, 2% responses lost after
the write, 1% timeouts). Meetings arrive as signed webhooks (one in twenty delivered
twice) at an intake running in this process; `meetsync worker` processes do the rest
while a random worker is SIGKILLed every few seconds, Redis is restarted without
persistence (every queued message lost) once 30% of the expected ops have settled, and
PostgreSQL at 60%. From 90% the killing stops (the faults stay on) and the harness waits
until the database says every meeting is planned and every op settled. Finally it
compares what the sandbox holds with the expected set (bench.chaos_verify) and prints one JSON line:

    {"meetings", "expected_ops", "duplicates", "missing", "extra", "dead_letters", "refused",
     "converge_s"}

converge_s: from the last scripted event (a restart, the last kill, the last webhook
accepted) to the last op settled. refused: ops the
provider refuses by their data in any run (see bench.chaos_verify), also dead letters.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from bench.chaos_services import (
    SandboxProcess,
    Workers,
    chaos_settings,
    restart_postgres,
    restart_redis,
    worker_env,
)
from bench.chaos_verify import compare, expected_ops
from intake.app import create_app
from intake.client import post_meeting
from intake.serving import BackgroundServer
from mappings.loader import load_mapping
from meetsync.bootstrap import seed_demo
from meetsync.db.migrate import upgrade
from meetsync.db.models import Meeting, OpRecord, Org
from meetsync.db.session import engine_for, session_scope
from meetsync.models import MeetingOutput
from meetsync.samples import load_samples
from workers.actors import declare
from workers.broker import make_broker
from workers.ledger import RESTING
from workers.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]
MAPPING = ROOT / "mappings" / "examples" / "acme.yaml"
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/13"  # other tests use 14 and 15


@dataclass
class ChaosConfig:
    meetings: int = 1000
    workers: int = 3
    threads: int = 4
    seed: int = 7
    restarts: bool = True
    kill_every_s: tuple[float, float] = (2.0, 6.0)
    redeliver_every: int = 20
    timeout_s: float = 1800.0
    keep: bool = False


def make_meetings(count: int, run: str) -> list[MeetingOutput]:
    """`count` distinct meetings, variants of the bundled samples, one org."""
    samples = load_samples()
    meetings = []
    for i in range(count):
        sample = samples[i % len(samples)]
        meetings.append(
            sample.model_copy(
                update={
                    "meeting_id": f"chaos-{run}-{i:05d}",
                    "title": f"{sample.title} #{i}",
                }
            )
        )
    return meetings


@contextmanager
def fresh_database(name: str, keep: bool) -> Iterator[str]:
    """A new PostgreSQL database for one run, dropped afterwards unless kept."""
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        yield url
    finally:
        engine_for(url).dispose()
        if not keep:
            with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def deliver(http: httpx.Client, secret: str, meeting: MeetingOutput) -> None:
    """Post a webhook until intake accepts it, as the notes pipeline retries on 5xx."""
    event_id = f"evt-{meeting.meeting_id}-{random.getrandbits(32):08x}"
    for attempt in range(200):
        try:
            response = post_meeting(http, secret, meeting, event_id=event_id)
            if response.status_code < 500 and response.status_code != 409:
                return
        except httpx.HTTPError:
            pass
        time.sleep(min(0.2 * (attempt + 1), 2.0))
    raise RuntimeError(f"intake never accepted {meeting.meeting_id}")


def progress(database_url: str) -> tuple[int, int, Counter[str]]:
    """(meetings, meetings still in the pipeline, op states) as the database says; asked
    again once when a PostgreSQL restart broke the pooled connection (pools do not ping)."""
    try:
        return _progress(database_url)
    except OperationalError:
        return _progress(database_url)


def _progress(database_url: str) -> tuple[int, int, Counter[str]]:
    with session_scope(database_url) as session:
        meetings = session.scalar(select(func.count()).select_from(Meeting)) or 0
        busy = (
            session.scalar(
                select(func.count())
                .select_from(Meeting)
                .where(Meeting.status.in_(("received", "extracting", "extracted")))
            )
            or 0
        )
        states = Counter(
            dict(
                session.execute(select(OpRecord.state, func.count()).group_by(OpRecord.state)).all()
            )
        )
    return meetings, busy, states


def settled(database_url: str, expected_meetings: int) -> bool:
    try:
        meetings, busy, states = progress(database_url)
    except Exception:
        return False
    return (
        meetings >= expected_meetings and busy == 0 and not (states["planned"] or states["sending"])
    )


class Chaos:
    """Kills a random worker every few seconds (and revives crashed ones) until stopped."""

    def __init__(self, workers: Workers, config: ChaosConfig) -> None:
        self.workers, self.config = workers, config
        self.rng = random.Random(config.seed)
        self.killing = threading.Event()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="chaos", daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(self.rng.uniform(*self.config.kill_every_s)):
            with self.lock:
                self.workers.revive()
                if self.killing.is_set():
                    self.workers.kill_one(self.rng)


class Timeline:
    """The run's scripted events, due when enough of the expected ops have settled."""

    def __init__(
        self, config: ChaosConfig, chaos: Chaos, total_ops: int, log: Callable[[str], None]
    ) -> None:
        self.config, self.chaos, self.total, self.log = config, chaos, max(total_ops, 1), log
        self.started = time.monotonic()
        self.pending = [(0.3, "redis"), (0.6, "postgres")] if config.restarts else []
        self.last_event = self.started

    def tick(self, database_url: str) -> None:
        """Fire what is due: restarts at 30% and 60% settled, no more kills from 90%."""
        try:
            _, _, states = progress(database_url)
        except Exception:
            return
        share = sum(states[s] for s in (*RESTING, "done")) / self.total
        while self.pending and share >= self.pending[0][0]:
            _, event = self.pending.pop(0)
            self.say(f"restarting {event} at {share:.0%} settled")
            with self.chaos.lock:  # no kill while a service is down and up again
                (restart_redis if event == "redis" else restart_postgres)()
            self.last_event = time.monotonic()
        if share >= 0.9 and self.chaos.killing.is_set() and not self.pending:
            self.chaos.killing.clear()
            self.say(f"no more kills at {share:.0%} settled")
            self.last_event = time.monotonic()

    def say(self, line: str) -> None:
        self.log(f"[{time.monotonic() - self.started:6.1f}s] {line}")


def run(config: ChaosConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """One chaos run; the figures of its JSON line."""
    run_id = f"{os.getpid()}x{int(time.time()) % 100000}"
    workdir = Path(tempfile.mkdtemp(prefix="meetsync-chaos-"))
    meetings = make_meetings(config.meetings, run_id)
    mapping = load_mapping(MAPPING.read_text())
    with fresh_database(f"meetsync_chaos_{run_id}", config.keep) as database_url:
        sandbox = SandboxProcess(workdir, seed=config.seed).start()
        server = BackgroundServer()
        settings = chaos_settings(sandbox, database_url, REDIS_URL, server.url)
        upgrade(database_url)
        with session_scope(database_url) as session:
            seed_demo(session, settings, MAPPING)
            org = session.get(Org, "acme")
            profile = dict(org.profile) if org else {}
        # the expected set first, from a fault-free extraction: it also paces the timeline
        ops = expected_ops(meetings, mapping, settings, profile)
        log(f"{len(ops)} ops expected from {config.meetings} meetings")
        # the run's own Redis database starts empty: queues, and a killed earlier run's
        # throttle state (its buckets' lines and leases) too
        redis.Redis.from_url(REDIS_URL).flushdb()
        broker = make_broker(REDIS_URL)
        pipeline = declare(broker, Runtime(settings))
        workers = Workers(
            worker_env(settings), workdir, count=config.workers, threads=config.threads
        )
        chaos = Chaos(workers, config)
        timeline = Timeline(config, chaos, len(ops), log)
        try:
            workers.start()
            server.start(create_app(settings, pipeline))
            chaos.thread.start()
            chaos.killing.set()
            secret = settings.webhook_secret.get_secret_value()
            with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as http:
                for i, meeting in enumerate(meetings):
                    deliver(http, secret, meeting)
                    if config.redeliver_every and i % config.redeliver_every == 0:
                        deliver(http, secret, meeting)  # the notes pipeline sends it again
                    if i % 10 == 0:
                        timeline.tick(database_url)
            intake_done = time.monotonic()
            timeline.say(f"{config.meetings} meetings accepted")
            deadline = intake_done + config.timeout_s
            last_report = 0.0
            while not settled(database_url, config.meetings) or timeline.pending:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"no convergence in {config.timeout_s}s: {progress(database_url)}"
                    )
                timeline.tick(database_url)
                if time.monotonic() - last_report > 15:
                    last_report = time.monotonic()
                    with chaos.lock:
                        workers.revive()
                    timeline.say(str(progress(database_url)))
                time.sleep(1.0)
            converged = time.monotonic()
        finally:
            chaos.stop.set()
            if chaos.thread.is_alive():
                chaos.thread.join(timeout=30)
            server.stop()
            workers.stop()
        try:
            states = {name: sandbox.state(name) for name in ("asana", "slack", "salesforce")}
            injected = sandbox.faults_injected()
        finally:
            sandbox.stop()
        with session_scope(database_url) as session:
            dead = session.scalar(
                select(func.count()).select_from(OpRecord).where(OpRecord.state.in_(RESTING))
            )
        result = compare(ops, states, database_url)
    figures = {
        "meetings": config.meetings,
        "expected_ops": result.expected_ops,
        "duplicates": result.duplicates,
        "missing": result.missing,
        "extra": result.extra,
        "dead_letters": int(dead or 0),
        "refused": result.refused,
        "converge_s": round(converged - max(intake_done, timeline.last_event), 1),
    }
    elapsed = converged - timeline.started
    log(
        f"elapsed {elapsed:.1f}s, {len(ops) / elapsed:.1f} ops/s, "
        f"{workers.kills} workers killed, faults injected {json.dumps(injected)}"
    )
    if result.missing_keys or result.duplicate_keys:
        log(f"missing {list(result.missing_keys)} duplicated {list(result.duplicate_keys)}")
    log(f"logs in {workdir}")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meetings", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-restarts", action="store_true", help="no Redis/PostgreSQL restart")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to converge")
    parser.add_argument("--keep", action="store_true", help="keep the run's database")
    args = parser.parse_args(argv)
    config = ChaosConfig(
        meetings=args.meetings,
        workers=args.workers,
        threads=args.threads,
        seed=args.seed,
        restarts=not args.no_restarts,
        timeout_s=args.timeout,
        keep=args.keep,
    )
    figures = run(config, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(json.dumps(figures), flush=True)
    ok = figures["duplicates"] == figures["missing"] == figures["extra"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
