"""Pipeline benchmark: `python -m bench.pipeline [--broker redis|rabbitmq]`.

Meetings go through the real webhook (in this process), the broker, PostgreSQL and
`meetsync worker` processes (2 × 8 threads, as the README deploys them) against the
sandbox in its own process (no faults, every quota lifted). Phases, each on new meetings:

- `noop`: dramatiq's floor — no-op messages through the same broker and worker shape;
- `throughput`: a batch posted at once with zero provider latency: meetings/s, and per
  meeting the workers' CPU seconds, SQL statements (counted inside each worker by
  `bench/pipeline_probe/sitecustomize.py`) and Redis commands (the server's own count),
  and the whole machine's CPU by part (workers, PostgreSQL, Redis, the emulators, this
  process's webhook and polls): what sizes a deployment, the database included;
- `pinned`: the same with the sandbox alone on one core and the workers on the others, so
  the emulators' own CPU is out of meetsync's way;
- `latency`: the same with realistic provider latency set in the sandbox;
- `burst`: 1,000 meetings at once: time to settle, and ops/s of the last tenth of the
  run over the first tenth (a collapse shows as a ratio well under 1);
- `live`: `--live` meetings (300) one at a time, webhook to last write, idle and then while
  a backfill of `--backfill` meetings runs (`meetsync backfill`, its own lane); each phase
  after three untimed ones (`WARMUP`).

Ends with one JSON line. Nothing here is a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import func, select

from bench.chaos import MAPPING, deliver, fresh_database, make_meetings, settled
from bench.chaos_services import MEETSYNC, SandboxProcess, Workers, chaos_settings, worker_env
from intake.app import create_app
from intake.serving import BackgroundServer
from meetsync.bootstrap import seed_demo
from meetsync.db.migrate import upgrade
from meetsync.db.models import InsightRecord, Meeting, OpRecord
from meetsync.db.session import session_scope
from meetsync.models import MeetingOutput
from workers.actors import declare
from workers.broker import make_broker
from workers.runtime import Runtime

REDIS_DB = "redis://127.0.0.1:6379/9"  # other benches use 10-13, tests 14-15
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
PROBE = Path(__file__).with_name("pipeline_probe")
PROCESSES, THREADS = 2, 8  # as the README deploys them; --processes/--threads to size
# realistic provider answers: tens to hundreds of ms, a long tail (lognormal)
LATENCY = {"lognormal": {"median": 0.12, "sigma": 0.5}, "max": 2.0}
# production's sweeper, not the chaos run's impatient one: merely queued work is left alone
FINAL = {"done", "failed", "dead", "paused"}
# live meetings sent before each latency phase is timed: the first after a phase change met
# what the last phase left behind (its backlog's last writes, idle consumers' first polls)
WARMUP = 3
PRODUCTION_SWEEP = {"MEETSYNC_RETRY__SWEEP_EVERY_S": "30", "MEETSYNC_RETRY__STUCK_AFTER_S": "120"}


def group_cpu_s(pgids: list[int]) -> float:
    """User + system CPU seconds of every live process in these process groups."""
    return sum(cpu for _, pgrp, cpu in _processes() if pgrp in pgids)


def named_cpu_s(names: set[str]) -> float:
    """User + system CPU seconds of every live process with one of these command names
    (`postgres`, `redis-server`: the servers this machine runs for everyone)."""
    return sum(cpu for name, _, cpu in _processes() if name in names)


def _processes() -> Iterator[tuple[str, int, float]]:
    """(command name, process group, CPU seconds) of every live process."""
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name, fields = (entry / "stat").read_text().split(" (", 1)[1].rsplit(")", 1)
        except (OSError, ValueError):
            continue
        # after the command: state ppid pgrp ... utime(12) stime(13)
        rest = fields.split()
        yield name, int(rest[2]), (int(rest[11]) + int(rest[12])) / tick


def group_pids(pgids: list[int]) -> list[int]:
    """Every live process in these process groups."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit():
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[2]) in pgids:
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def pin(pids: list[int], cores: set[int]) -> None:
    """Move every thread of these processes onto `cores` (`taskset -a -p`, in Python)."""
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                os.sched_setaffinity(int(task.name), cores)
            except OSError:
                continue  # a thread that ended meanwhile


@contextmanager
def emulators_pinned(sandbox_pid: int, pgids: list[int]) -> Iterator[bool]:
    """The sandbox alone on the first core, the workers on the others, restored after:
    what meetsync does when the emulators' own CPU is out of its way."""
    every = os.sched_getaffinity(0)
    if len(every) < 2:
        yield False
        return
    first = {min(every)}
    pin([sandbox_pid], first)
    pin(group_pids(pgids), every - first)
    try:
        yield True
    finally:
        pin([sandbox_pid, *group_pids(pgids)], every)


class Counters:
    """Worker and machine CPU, SQL statements and Redis commands, read before and after a
    phase."""

    def __init__(
        self, workers: list[Workers], probe_dir: Path, redis_url: str, sandbox_pid: int
    ) -> None:
        self.workers, self.probe_dir, self.sandbox_pid = workers, probe_dir, sandbox_pid
        self.redis = redis.Redis.from_url(redis_url)

    def read(self) -> dict[str, float]:
        sql = sum(int(p.read_text() or 0) for p in self.probe_dir.glob("sql-*"))
        stats = self.redis.info("stats")
        pgids = [p.pid for group in self.workers for p in group.processes]
        bench = os.times()  # this process: the webhook's server and the bench's own polls
        return {
            "sql": float(sql),
            "redis": float(stats["total_commands_processed"]),
            f"{MACHINE}workers": group_cpu_s(pgids),
            f"{MACHINE}database": named_cpu_s({"postgres"}),
            f"{MACHINE}redis": named_cpu_s({"redis-server"}),
            f"{MACHINE}emulators": group_cpu_s([self.sandbox_pid]),
            f"{MACHINE}webhook_and_bench": bench.user + bench.system,
            **self._actors(),
        }

    def _actors(self) -> dict[str, float]:
        """Thread CPU seconds spent in each actor so far (the probe's `actors-<pid>` files)."""
        spent: dict[str, float] = {}
        for path in self.probe_dir.glob("actors-*"):
            with suppress(ValueError):  # caught mid-write: the next read has it
                for name, (_, seconds) in json.loads(path.read_text() or "{}").items():
                    spent[f"{ACTOR}{name}"] = spent.get(f"{ACTOR}{name}", 0.0) + seconds
        return spent


ACTOR = "actor:"  # Counters keys of per-actor CPU
MACHINE = "machine:"  # Counters keys of the machine's CPU by part


def machine_cpu(costs: dict[str, float], meetings: int) -> dict[str, float]:
    """Milliseconds of CPU per meeting in each part of the machine, and their total: what
    sizes a deployment (the database's share included), beside what the workers spend."""
    parts = {
        k.removeprefix(MACHINE): round(1000 * v / meetings, 1)
        for k, v in costs.items()
        if k.startswith(MACHINE)
    }
    return parts | {"total": round(sum(parts.values()), 1)}


def by_actor(costs: dict[str, float], meetings: int) -> dict[str, float]:
    """Milliseconds of thread CPU per meeting in each actor that spent any."""
    spent = {
        k.removeprefix(ACTOR): 1000 * v / meetings for k, v in costs.items() if k.startswith(ACTOR)
    }
    return {
        name: round(ms, 1) for name, ms in sorted(spent.items(), key=lambda kv: -kv[1]) if ms >= 0.1
    }


@contextmanager
def measured(counters: Counters, into: dict[str, float]) -> Iterator[None]:
    time.sleep(1.1)  # let the probes write their counts
    before = counters.read()
    began = time.monotonic()
    yield
    time.sleep(1.1)
    after = counters.read()
    into.update({k: after[k] - before.get(k, 0.0) for k in after})
    into["elapsed"] = time.monotonic() - began


def provider_calls(sandbox: SandboxProcess) -> dict[tuple[str, str], int]:
    """Requests each provider's emulator has answered, by provider and endpoint."""
    return {
        (name, endpoint): count
        for name in sandbox.origins
        for endpoint, count in sandbox.stats(name)["requests"].items()
    }


def calls_per_meeting(
    before: dict[tuple[str, str], int], after: dict[tuple[str, str], int], meetings: int
) -> dict[str, float]:
    """HTTP requests per meeting, by provider: what the clients' CPU is spent on."""
    calls: Counter[str] = Counter()
    for (name, endpoint), count in after.items():
        calls[name] += count - before.get((name, endpoint), 0)
    return {name: round(count / meetings, 2) for name, count in sorted(calls.items())}


def endpoint_calls(
    before: dict[tuple[str, str], int], after: dict[tuple[str, str], int], meetings: int
) -> str:
    """The busiest endpoints' requests per meeting, for the log."""
    calls = {key: (count - before.get(key, 0)) / meetings for key, count in after.items()}
    busiest = sorted(calls.items(), key=lambda kv: -kv[1])[:12]
    return ", ".join(f"{name} {endpoint} {rate:.2f}" for (name, endpoint), rate in busiest if rate)


def post_all(http: httpx.Client, secret: str, meetings: list[MeetingOutput]) -> None:
    for meeting in meetings:
        deliver(http, secret, meeting)


def wait_settled(database_url: str, expected: int, timeout_s: float) -> float:
    """Seconds until every meeting stored so far is through and no op is in flight."""
    began = time.monotonic()
    while not settled(database_url, expected):
        if time.monotonic() - began > timeout_s:
            raise TimeoutError(f"not settled in {timeout_s:.0f}s")
        time.sleep(0.5)  # each poll counts every op: the bench stays out of the way
    return time.monotonic() - began


def done_times(database_url: str, prefix: str) -> list[float]:
    """When each op of these meetings was written (epoch seconds)."""
    with session_scope(database_url) as session:
        rows = session.scalars(
            select(OpRecord.updated_at)
            .join(Meeting, Meeting.id == OpRecord.meeting_id)
            .where(Meeting.external_id.startswith(prefix), OpRecord.state == "done")
        ).all()
    return sorted(_epoch(t) for t in rows)


def decile_ratio(times: list[float]) -> float:
    """Ops/s in the last tenth of the span over ops/s in the first tenth."""
    if len(times) < 20:
        return 0.0
    start, end = times[0], times[-1]
    tenth = (end - start) / 10 or 1e-9
    first = sum(1 for t in times if t < start + tenth)
    last = sum(1 for t in times if t >= end - tenth)
    return round(last / max(first, 1), 3)


def hops(database_url: str, meeting_id: str, sent: float) -> dict[str, float]:
    """Where one meeting's time went (ms), from what the database stamped: `stored` (the
    webhook), `extract` (queued + run; `llm` of it the model's calls), `plan` (queued +
    run, to its first op), `push` (the first write's op to the last non-recap write) and
    `recap` (after the others, to the Slack recap)."""
    with session_scope(database_url) as session:
        meeting = session.get(Meeting, meeting_id)
        insight = session.scalars(
            select(InsightRecord)
            .where(InsightRecord.meeting_id == meeting_id)
            .order_by(InsightRecord.created_at)
        ).first()
        ops = session.scalars(select(OpRecord).where(OpRecord.meeting_id == meeting_id)).all()
        if meeting is None or insight is None or not ops:
            return {}
        received, extracted = _epoch(meeting.received_at), _epoch(insight.created_at)
        planned = min(_epoch(op.created_at) for op in ops)
        others = [_epoch(op.updated_at) for op in ops if op.connector != "slack"] or [planned]
        recaps = [_epoch(op.updated_at) for op in ops if op.connector == "slack"]
        pushed = max(others)
        return {
            "stored": (received - sent) * 1000,
            "extract": (extracted - received) * 1000,
            "llm": float(insight.latency_ms or 0),
            "plan": (planned - extracted) * 1000,
            "push": (pushed - planned) * 1000,
            "recap": (max(recaps) - pushed) * 1000 if recaps else 0.0,
        }


def hop_medians(per_meeting: list[dict[str, float]]) -> dict[str, float]:
    """Each hop's median over the meetings (ms)."""
    names = sorted({name for one in per_meeting for name in one})
    return {
        name: round(statistics.median(one[name] for one in per_meeting if name in one), 1)
        for name in names
    }


def live_latencies(
    http: httpx.Client,
    secret: str,
    database_url: str,
    meetings: list[MeetingOutput],
    per_hop: list[dict[str, float]] | None = None,
) -> list[float]:
    """Webhook to last write of each live meeting, sent one at a time (ms); each
    meeting's `hops` appended to `per_hop` when given."""
    latencies = []
    for meeting in meetings:
        sent = time.time()
        deliver(http, secret, meeting)
        deadline = time.monotonic() + 300
        while True:
            with session_scope(database_url) as session:
                row = session.scalars(
                    select(Meeting).where(Meeting.external_id == meeting.meeting_id)
                ).first()
                states = (
                    session.execute(
                        select(OpRecord.state, func.max(OpRecord.updated_at))
                        .where(OpRecord.meeting_id == row.id)
                        .group_by(OpRecord.state)
                    ).all()
                    if row is not None
                    else []
                )
                status = row.status if row is not None else None
            if status == "failed" or (
                status == "planned" and states and {s for s, _ in states} <= FINAL
            ):
                last = max((t for _, t in states), default=None)
                latencies.append(((_epoch(last) if last else time.time()) - sent) * 1000)
                if per_hop is not None and row is not None:
                    per_hop.append(hops(database_url, row.id, sent))
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"live meeting {meeting.meeting_id} never finished")
            time.sleep(0.02)
    return latencies


def p99(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1)


def noop_rate(
    broker_url: str, messages: int, env: dict[str, str], logdir: Path, shape: tuple[int, int]
) -> float:
    """dramatiq's own messages/s with the same broker, processes and threads."""
    namespace = broker_url if broker_url.startswith("amqp") else f"{REDIS_DB}?namespace=noop"
    env = {**env, "BENCH_NOOP_BROKER": namespace}
    os.environ["BENCH_NOOP_BROKER"] = namespace
    from bench import noop_actor

    noop_actor.broker.flush_all()
    for i in range(messages):
        noop_actor.noop.send(i)
    dramatiq = str(Path(MEETSYNC).with_name("dramatiq"))
    proc = subprocess.Popen(
        [dramatiq, "bench.noop_actor", "--processes", str(shape[0]), "--threads", str(shape[1])],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(logdir / "noop.log", "wb"),  # noqa: SIM115 - lives with the process
        start_new_session=True,
    )
    began = time.monotonic()
    try:
        while _queued(noop_actor.broker, noop_actor.QUEUE) > 0:
            if time.monotonic() - began > 300:
                raise TimeoutError("no-op messages not drained")
            time.sleep(0.05)
        return messages / (time.monotonic() - began)
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def _queued(broker: Any, queue: str) -> int:
    from workers.backlog import queued

    return queued(broker, queue) or 0


def _epoch(stamp: datetime) -> float:
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


def run(args: argparse.Namespace, log: Any) -> dict[str, Any]:
    run_id = f"{os.getpid()}x{int(time.time()) % 100000}"
    workdir = Path(tempfile.mkdtemp(prefix="meetsync-pipeline-"))
    probe_dir = workdir / "probe"
    probe_dir.mkdir()
    broker_url = f"{REDIS_DB}?namespace=pipe{run_id}" if args.broker == "redis" else RABBITMQ_URL
    figures: dict[str, Any] = {
        "broker": args.broker,
        "processes": args.processes,
        "threads": args.threads,
    }
    keep = bool(os.environ.get("BENCH_KEEP_DB"))  # to look into afterwards
    with fresh_database(f"meetsync_pipeline_{run_id}", keep=keep) as database_url:
        sandbox = SandboxProcess(workdir, seed=11, faults=False).start()
        server = BackgroundServer()
        settings = chaos_settings(sandbox, database_url, REDIS_DB, server.url)
        settings = settings.model_copy(update={"broker_url": broker_url})
        upgrade(database_url)
        with session_scope(database_url) as session:
            seed_demo(session, settings, MAPPING)
        env = {
            **worker_env(settings),
            **PRODUCTION_SWEEP,
            "PYTHONPATH": os.pathsep.join([str(PROBE), os.environ.get("PYTHONPATH", "")]),
            "BENCH_PROBE_DIR": str(probe_dir),
            "BENCH_ACTOR_CPU": "1",  # two clock reads per message
        }
        if not args.only_live:
            figures["noop_msgs_per_s"] = round(
                noop_rate(broker_url, args.noop, env, workdir, (args.processes, args.threads)), 1
            )
            log(f"noop: {figures['noop_msgs_per_s']} msgs/s")
        broker = make_broker(broker_url)
        broker.flush_all()
        pipeline = declare(broker, Runtime(settings))
        live_lane = ["--lane", "live"]
        workers = Workers(env, workdir, count=args.processes, threads=args.threads, args=live_lane)
        # the backfill lane in a process of its own, at a lower CPU priority: what a
        # deployment per lane does (deploy/k8s), so live work keeps the cores it needs
        backfill_workers = Workers(
            env, workdir, count=1, threads=args.threads, args=["--lane", "backfill", "--nice", "10"]
        )
        assert sandbox.process is not None
        counters = Counters([workers, backfill_workers], probe_dir, REDIS_DB, sandbox.process.pid)
        secret = settings.webhook_secret.get_secret_value()
        stored = 0
        try:
            workers.start()
            backfill_workers.start()
            server.start(create_app(settings, pipeline))
            with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as http:
                # warm up: imports, connections, caches
                post_all(http, secret, make_meetings(10, f"{run_id}-warm"))
                stored += 10
                wait_settled(database_url, stored, 300)

                if args.only_live:
                    stored += _live_phases(
                        args, figures, http, secret, database_url, run_id, workdir, env, log
                    )
                    return figures
                costs: dict[str, float] = {}
                batch = make_meetings(args.meetings, f"{run_id}-tp")
                calls_before = provider_calls(sandbox)
                with measured(counters, costs):
                    began = time.monotonic()
                    post_all(http, secret, batch)
                    stored += len(batch)
                    wait_settled(database_url, stored, 1800)
                    took = time.monotonic() - began
                figures["meetings_per_s"] = round(len(batch) / took, 2)
                figures["cpu_s_per_meeting"] = round(costs[f"{MACHINE}workers"] / len(batch), 4)
                figures["sql_per_meeting"] = round(costs["sql"] / len(batch), 1)
                figures["redis_cmds_per_meeting"] = round(costs["redis"] / len(batch), 1)
                figures["cpu_ms_per_meeting_by_actor"] = by_actor(costs, len(batch))
                figures["machine_cpu_ms_per_meeting"] = machine_cpu(costs, len(batch))
                calls_after = provider_calls(sandbox)
                figures["provider_calls_per_meeting"] = calls_per_meeting(
                    calls_before, calls_after, len(batch)
                )
                busiest = endpoint_calls(calls_before, calls_after, len(batch))
                log(f"provider calls a meeting: {busiest}")
                log(f"throughput: {json.dumps(figures)}")

                batch = make_meetings(args.meetings, f"{run_id}-pin")
                pgids = [p.pid for p in workers.processes]
                assert sandbox.process is not None
                with emulators_pinned(sandbox.process.pid, pgids) as pinned:
                    began = time.monotonic()
                    post_all(http, secret, batch)
                    stored += len(batch)
                    wait_settled(database_url, stored, 1800)
                    if pinned:
                        figures["meetings_per_s_emulators_pinned"] = round(
                            len(batch) / (time.monotonic() - began), 2
                        )
                log(f"emulators pinned: {figures.get('meetings_per_s_emulators_pinned')}")

                if args.quick:
                    return figures
                sandbox.set_latency(LATENCY)
                batch = make_meetings(args.meetings // 2, f"{run_id}-lat")
                began = time.monotonic()
                post_all(http, secret, batch)
                stored += len(batch)
                wait_settled(database_url, stored, 1800)
                figures["meetings_per_s_with_latency"] = round(
                    len(batch) / (time.monotonic() - began), 2
                )
                sandbox.set_latency(None)
                log(f"with latency: {figures['meetings_per_s_with_latency']} meetings/s")

                burst = make_meetings(args.burst, f"{run_id}-burst")
                began = time.monotonic()
                post_all(http, secret, burst)
                stored += len(burst)
                wait_settled(database_url, stored, 3600)
                figures["burst_settle_s"] = round(time.monotonic() - began, 1)
                times = done_times(database_url, f"chaos-{run_id}-burst")
                figures["burst_last_vs_first"] = decile_ratio(times)
                log(f"burst: {figures['burst_settle_s']}s, last/first {decile_ratio(times)}")

                stored += _live_phases(
                    args, figures, http, secret, database_url, run_id, workdir, env, log
                )
        finally:
            server.stop()
            workers.stop()
            backfill_workers.stop()
            sandbox.stop()
            broker.close()
    return figures


def _live_phases(
    args: argparse.Namespace,
    figures: dict[str, Any],
    http: httpx.Client,
    secret: str,
    database_url: str,
    run_id: str,
    workdir: Path,
    env: dict[str, str],
    log: Any,
) -> int:
    """Live meetings idle, then while a backfill runs; how many meetings were sent."""
    live = make_meetings(args.live + WARMUP, f"{run_id}-live")
    idle_hops: list[dict[str, float]] = []
    idle = live_latencies(http, secret, database_url, live, idle_hops)[WARMUP:]
    figures["live_p50_ms_idle"] = round(statistics.median(idle), 1)
    figures["live_p99_ms_idle"] = p99(idle)
    figures["live_hops_ms_idle"] = hop_medians(idle_hops[WARMUP:])
    backfill = _start_backfill(args.backfill, run_id, workdir, env)
    try:
        # live meetings only once the backfill is storing meetings: its feeder starting up
        # (imports, 10,000 payloads) is not what a live meeting beside a backfill meets
        figures["backfill_start_s"] = _under_way(database_url, run_id, backfill)
        time.sleep(args.backfill_lead_s)
        before = sum(_backfilled(database_url, run_id).values())
        live = make_meetings(args.live + WARMUP, f"{run_id}-live2")
        busy_hops: list[dict[str, float]] = []
        busy = live_latencies(http, secret, database_url, live, busy_hops)[WARMUP:]
        during = sum(_backfilled(database_url, run_id).values()) - before
    finally:
        backfill.terminate()
        backfill.wait(timeout=60)
    figures["live_p50_ms_with_backfill"] = round(statistics.median(busy), 1)
    figures["live_p99_ms_with_backfill"] = p99(busy)
    figures["live_hops_ms_with_backfill"] = hop_medians(busy_hops[WARMUP:])
    figures["backfill_meetings"] = args.backfill
    figures["backfill_meetings_stored"] = _backfilled(database_url, run_id)
    figures["backfill_stored_during_live"] = during
    log(f"live: idle p99 {p99(idle)} ms, with backfill p99 {p99(busy)} ms")
    log(f"idle, in order (ms): {[round(x) for x in idle]}")
    log(f"with backfill, in order (ms): {[round(x) for x in busy]}")
    log(f"hops idle {figures['live_hops_ms_idle']}")
    log(f"hops with backfill {figures['live_hops_ms_with_backfill']}")
    slowest = sorted(zip(busy, busy_hops[WARMUP:], strict=False), key=lambda pair: -pair[0])[:5]
    log(f"slowest with backfill: {[(round(ms), hop) for ms, hop in slowest]}")
    return 2 * (args.live + WARMUP)


def _under_way(database_url: str, run_id: str, backfill: Any, timeout_s: float = 300) -> float:
    """Seconds until the backfill stored its first meetings."""
    began = time.monotonic()
    while not _backfilled(database_url, run_id):
        if backfill.poll() is not None:
            raise RuntimeError(f"the backfill exited ({backfill.returncode}) before storing any")
        if time.monotonic() - began > timeout_s:
            raise RuntimeError(f"the backfill stored nothing in {timeout_s:.0f} s")
        time.sleep(0.2)
    return round(time.monotonic() - began, 1)


def _backfilled(database_url: str, run_id: str) -> dict[str, int]:
    """The backfill's meetings by status when the live phase ended."""
    with session_scope(database_url) as session:
        rows = session.execute(
            select(Meeting.status, func.count())
            .where(Meeting.external_id.startswith(f"chaos-{run_id}-bf"))
            .group_by(Meeting.status)
        ).all()
    return {status: int(n) for status, n in rows}


def _start_backfill(count: int, run_id: str, workdir: Path, env: dict[str, str]) -> Any:
    """`meetsync backfill` of `count` past meetings from a JSONL file, in the background."""
    path = workdir / "backfill.jsonl"
    with path.open("w") as out:
        for meeting in make_meetings(count, f"{run_id}-bf"):
            out.write(meeting.model_dump_json() + "\n")
    since = "2000-01-01"
    return subprocess.Popen(
        [MEETSYNC, "backfill", "--org", "acme", "--since", since, "--source", f"file:{path}",
         "--no-wait"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "backfill.log", "wb"),
        start_new_session=True,
        preexec_fn=lambda: os.nice(10),  # `nice meetsync backfill`: as its workers, after live
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--broker", choices=["redis", "rabbitmq"], default="redis")
    parser.add_argument("--processes", type=int, default=PROCESSES, help="live worker processes")
    parser.add_argument("--threads", type=int, default=THREADS, help="threads per worker process")
    parser.add_argument("--meetings", type=int, default=300, help="throughput batch")
    parser.add_argument("--burst", type=int, default=1000)
    # the p99 is the slowest of 100 (the default was 30: one outlier in 30 set the figure)
    parser.add_argument("--live", type=int, default=300, help="live meetings per latency phase")
    parser.add_argument("--backfill", type=int, default=10_000)
    parser.add_argument("--noop", type=int, default=20_000, help="no-op messages")
    parser.add_argument("--quick", action="store_true", help="noop and throughput only")
    parser.add_argument(
        "--only-live", action="store_true", help="the live phases only (with --backfill N)"
    )
    parser.add_argument(
        "--backfill-lead-s",
        type=float,
        default=0.0,
        help="backfill alone before live meetings, once it stores meetings",
    )
    args = parser.parse_args(argv)
    figures = run(args, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
