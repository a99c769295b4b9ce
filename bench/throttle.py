"""Throttle benchmark: `python -m bench.throttle`.

4 dramatiq worker processes on a Redis broker push 3,000 ops to each sandbox provider,
configured with its real limit (time-scaled where a real run would take too long), first
through meetsync's throttle, then through dramatiq's built-in rate limiters configured the
obvious way. Per provider it prints utilization, 429s received, messages lost and retries
spent, and ends with one JSON line.

As in `workers/lanes.py`, a push that must wait comes back on its provider's returns queue,
which workers run before new work: a turn held behind 3,000 fresh messages is a turn lost.

Each provider is driven with its own SDK (asana, slack-sdk, simple-salesforce, openai)
straight at its emulator, not through the connectors, so the run measures the throttle and
not the ledger or the database.

Utilization is what the provider let through divided by what it would have allowed: for a
rate limit, ops done ÷ (burst + rate × elapsed), elapsed from the first to the last
success; for Salesforce's daily budget, API calls spent ÷ the budget outside the reserve.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import redis

for _var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_var, None)  # loopback only; slack-sdk would honour a proxy

OPS = int(os.environ.get("BENCH_OPS", 3_000))
ASANA_PAT = "sandbox-pat"  # a personal access token the Asana emulator issued
PROCESSES = 4
THREADS = 8
BROKER_URL = "redis://127.0.0.1:6379/12"
STATE_URL = "redis://127.0.0.1:6379/11"
DEADLINE_S = 110.0
CHANNELS = [f"bench-{n}" for n in range(10)]
SLACK_SCALE = 5  # Slack: 1 msg/s per channel and 10/s per workspace, run 5x faster
OPENAI_SCALE = 3  # OpenAI tier 1 gpt-4o-mini: 500 RPM, run 3x faster
SF_DAILY = 3_000  # a daily API budget the workload exceeds, so the reserve is tested
SF_RESERVE = 0.1
MODEL = "gpt-4o-mini"
OPENAI_RPM = 500 * OPENAI_SCALE
SLACK_WORKSPACE_RPS = 10 * SLACK_SCALE
# 0, as deployed: no thread sleeps. BENCH_EARLY_MS=150 re-enqueues a turn's wait that much
# early and sleeps the rest in the worker thread (workers/throttle/buckets.py `admit`)
EARLY_MS = int(os.environ.get("BENCH_EARLY_MS", 0))


@dataclass(frozen=True)
class Provider:
    """One provider's real limit as the emulator enforces it and the throttle is told."""

    name: str
    rate: float  # per second
    burst: int
    concurrency: int


PROVIDERS = {
    "asana": Provider("asana", 1500 / 60, 1500, 15),
    "slack": Provider("slack", 10.0 * SLACK_SCALE, 100, 8),
    "salesforce": Provider("salesforce", SF_DAILY / 86_400, SF_DAILY, 25),
    "openai": Provider("openai", 500 * OPENAI_SCALE / 60, 500 * OPENAI_SCALE, 50),
}
ALL_PROVIDERS = dict(PROVIDERS)
SLACK_CHANNEL = Provider("slack-channel", 1.0 * SLACK_SCALE, 5, 1)
SANDBOX_OPTIONS: dict[str, dict[str, Any]] = {
    "asana": {"requests_per_minute": 1500, "concurrent_writes": 15},
    "slack": {
        "channel_rate": SLACK_CHANNEL.rate,
        "channel_burst": SLACK_CHANNEL.burst,
        "workspace_rate": PROVIDERS["slack"].rate,
        "workspace_burst": PROVIDERS["slack"].burst,
    },
    "salesforce": {"daily_api_limit": SF_DAILY},
    "openai": {"rpm": PROVIDERS["openai"].burst, "tpm": 100_000_000},
}
# BENCH_ONLY=slack,asana runs a subset (the JSON line then lacks the others)
ONLY = [p for p in os.environ.get("BENCH_ONLY", "").split(",") if p]
# BENCH_MODES=meetsync skips the baseline (the JSON line then lacks it)
MODES = [m for m in os.environ.get("BENCH_MODES", "meetsync,builtin").split(",") if m]
if ONLY:
    PROVIDERS = {k: v for k, v in ALL_PROVIDERS.items() if k in ONLY}


class Limited(Exception):
    """The provider refused for a limit; wait `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"limited for {retry_after}s")
        self.retry_after = retry_after


# -- the SDK calls, one per op ------------------------------------------------------------
class Clients:
    """Each provider's SDK client in one worker process."""

    def __init__(self, ctx: dict[str, Any]) -> None:
        import asana
        import openai
        import requests
        from simple_salesforce import Salesforce
        from slack_sdk import WebClient

        conf = asana.Configuration()
        conf.host = ctx["urls"]["asana"]
        conf.access_token = ASANA_PAT
        conf.retry_strategy = False
        conf.connection_pool_maxsize = THREADS * 2
        self.tasks = asana.TasksApi(asana.ApiClient(conf))
        self.workspace = ctx["asana_workspace"]
        self.slack = WebClient(base_url=ctx["urls"]["slack"], token=ctx["slack_token"])
        session = requests.Session()
        session.verify = ctx["ca_file"]
        session.trust_env = False  # a CA bundle from the environment would override verify
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=THREADS * 2)
        session.mount("https://", adapter)
        self.sf = Salesforce(
            instance_url=ctx["sf_instance"], session_id=ctx["sf_token"], session=session
        )
        self.openai = openai.OpenAI(
            base_url=ctx["urls"]["openai"], api_key="sk-bench", max_retries=0
        )

    def close(self) -> None:
        # the asana SDK closes its thread pool in __del__, too late at interpreter exit
        api_client = self.tasks.api_client
        if hasattr(api_client, "pool"):
            api_client.pool.close()
            api_client.pool.join()
            del api_client.pool

    def call(self, provider: str, i: int) -> dict[str, str]:
        """Make op `i`; headers the throttle can learn from; Limited on a limit."""
        if provider == "asana":
            return self._asana(i)
        if provider == "slack":
            return self._slack(i)
        if provider == "salesforce":
            return self._salesforce(i)
        return self._openai(i)

    def _asana(self, i: int) -> dict[str, str]:
        from asana.rest import ApiException

        try:
            self.tasks.create_task({"data": {"name": f"op {i}", "workspace": self.workspace}}, {})
        except ApiException as exc:
            if exc.status == 429:
                raise Limited(float((exc.headers or {}).get("Retry-After", 1))) from exc
            raise
        return {}

    def _slack(self, i: int) -> dict[str, str]:
        from slack_sdk.errors import SlackApiError

        try:
            self.slack.chat_postMessage(channel=CHANNELS[i % len(CHANNELS)], text=f"op {i}")
        except SlackApiError as exc:
            if exc.response.status_code == 429:
                raise Limited(float(exc.response.headers.get("Retry-After", 1))) from exc
            raise
        return {}

    def _salesforce(self, i: int) -> dict[str, str]:
        from simple_salesforce.exceptions import SalesforceError

        try:
            task: Any = self.sf.Task
            result = task.create({"Subject": f"op {i}"})
        except SalesforceError as exc:
            if exc.status in (403, 429):
                raise Limited(900.0) from exc
            raise
        usage = getattr(self.sf, "api_usage", {}).get("api-usage")
        headers = {"used": str(usage.used), "total": str(usage.total)} if usage else {}
        assert result
        return headers

    def _openai(self, i: int) -> dict[str, str]:
        import openai

        try:
            raw = self.openai.chat.completions.with_raw_response.create(
                model=MODEL, messages=[{"role": "user", "content": f"op {i}"}], max_tokens=16
            )
        except openai.RateLimitError as exc:
            raise Limited(float(exc.response.headers.get("Retry-After", 1))) from exc
        return dict(raw.headers)


# -- the worker processes -----------------------------------------------------------------
def _asks() -> dict[str, Any]:
    from connectors.base import Limits
    from workers.throttle.buckets import Ask
    from workers.throttle.limits import with_headroom

    headroom = 0.98
    asks: dict[str, Any] = {}
    for name, p in PROVIDERS.items():
        burst = p.burst
        if name == "salesforce":
            burst = int(SF_DAILY * (1 - SF_RESERVE))
        limits = with_headroom(
            Limits(rate=p.rate, burst=burst, concurrency=p.concurrency), headroom
        )
        asks[name] = Ask(f"{name}:bench", limits, flow="bench-org", org="bench-org")
    # a channel's burst is tiny, so a request that arrives early costs a 429: keep one in hand
    channel = with_headroom(
        Limits(rate=SLACK_CHANNEL.rate, burst=SLACK_CHANNEL.burst - 1, concurrency=1), headroom
    )
    for c in CHANNELS if "slack" in asks else []:
        asks[f"slack/{c}"] = Ask(
            "slack:bench",
            asks["slack"].limits,
            flow=f"bench-org/{c}",
            org="bench-org",
            flow_limits=channel,
        )
    return asks


def _builtin_limiters(backend: Any) -> dict[str, list[Any]]:
    """dramatiq's rate limiters, configured the obvious way for each provider."""
    from dramatiq.rate_limits import BucketRateLimiter, ConcurrentRateLimiter

    limiters: dict[str, list[Any]] = {
        "asana": [
            BucketRateLimiter(backend, "asana-rpm", limit=1500, bucket=60_000),
            ConcurrentRateLimiter(backend, "asana-writes", limit=15),
        ],
        "salesforce": [
            BucketRateLimiter(backend, "sf-daily", limit=SF_DAILY, bucket=86_400_000),
            ConcurrentRateLimiter(backend, "sf-concurrent", limit=25),
        ],
        "openai": [
            BucketRateLimiter(
                backend, "openai-rpm", limit=ALL_PROVIDERS["openai"].burst, bucket=60_000
            )
        ],
    }
    for c in CHANNELS:
        limiters[f"slack/{c}"] = [
            BucketRateLimiter(backend, f"slack-{c}", limit=SLACK_CHANNEL.burst, bucket=1000),
            BucketRateLimiter(
                backend, "slack-ws", limit=int(ALL_PROVIDERS["slack"].rate), bucket=1000
            ),
        ]
    return limiters


def worker_main(mode: str, ctx: dict[str, Any], stop: Any) -> None:
    """One worker process: the bench actors on the Redis broker, THREADS threads."""
    import logging

    import dramatiq
    from dramatiq import Worker
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.middleware import CurrentMessage, Middleware
    from dramatiq.rate_limits.backends import RedisBackend

    from workers.lanes import Lane
    from workers.throttle.buckets import Tuning, admit, redelivery_ms
    from workers.throttle.feedback import on_headers, on_salesforce_usage
    from workers.throttle.redis import RedisThrottle

    logging.getLogger("dramatiq").setLevel(logging.CRITICAL)  # failed attempts are counted
    state = redis.Redis.from_url(STATE_URL)
    broker = RedisBroker(url=BROKER_URL)
    broker.add_middleware(CurrentMessage())

    class Outcomes(Middleware):
        """Counts each failed attempt (a retry spent) and each message given up on."""

        def after_process_message(
            self, broker: Any, message: Any, *, result: Any = None, exception: Any = None
        ) -> None:
            if exception is None:
                return
            provider = message.actor_name.removeprefix("bench_").removesuffix("_return")
            state.hincrby(f"{mode}:retries", provider, 1)
            state.hincrby(f"{mode}:errors:{provider}", type(exception).__name__, 1)
            if message.options.get("retries", 0) >= message.options.get("max_retries", 20):
                state.sadd(f"{mode}:dead:{provider}", message.args[0])
                state.srem(f"{mode}:pending:{provider}", message.args[0])

    broker.add_middleware(Outcomes())
    clients = Clients(ctx)
    throttle = RedisThrottle.from_url(STATE_URL, Tuning(early_ms=EARLY_MS))
    asks = _asks()
    limiters = _builtin_limiters(RedisBackend(client=state)) if mode == "builtin" else {}
    actors: dict[str, Any] = {}
    returns: dict[str, Any] = {}  # waits come back on their own queue, ahead of the backlog

    def done(provider: str, i: int) -> None:
        pipe = state.pipeline()
        pipe.sadd(f"{mode}:done:{provider}", i)
        pipe.srem(f"{mode}:pending:{provider}", i)
        pipe.rpush(f"{mode}:times:{provider}", time.time())
        pipe.execute()

    def ask_for(provider: str, i: int) -> Any:
        return (
            asks[f"slack/{CHANNELS[i % len(CHANNELS)]}"] if provider == "slack" else asks[provider]
        )

    def throttled(provider: str, i: int, ticket: int = 0) -> None:
        ask = ask_for(provider, i)
        decision = admit(throttle, ask, ticket)
        if not decision.granted:
            returns[provider].send_with_options(
                args=(i,),
                kwargs={"ticket": decision.ticket},
                delay=redelivery_ms(throttle, decision),
            )
            return
        try:
            headers = clients.call(provider, i)
        except Limited as exc:
            state.hincrby(f"{mode}:429", provider, 1)
            wait = throttle.penalize(ask.bucket, exc.retry_after)
            returns[provider].send_with_options(args=(i,), delay=max(1, wait))
            return
        finally:
            throttle.release(ask, decision.lease)
        if "used" in headers:
            used, total = int(headers["used"]), int(headers["total"])
            on_salesforce_usage(throttle, ask.bucket, used, total, SF_RESERVE, ask.limits)
        elif headers:
            on_headers(throttle, ask.bucket, headers, ask.limits)
        done(provider, i)

    def builtin(provider: str, i: int, ticket: int = 0) -> None:
        key = f"slack/{CHANNELS[i % len(CHANNELS)]}" if provider == "slack" else provider
        chain = limiters[key]
        try:
            with chain[0].acquire():
                if len(chain) > 1:
                    with chain[1].acquire():
                        clients.call(provider, i)
                else:
                    clients.call(provider, i)
        except Limited:
            state.hincrby(f"{mode}:429", provider, 1)
            raise
        done(provider, i)

    body = throttled if mode == "meetsync" else builtin
    for provider in PROVIDERS:

        def run(i: int, ticket: int = 0, _p: str = provider) -> None:
            body(_p, i, ticket)

        actors[provider] = dramatiq.actor(
            broker=broker,
            actor_name=f"bench_{provider}",
            queue_name=f"bench.{provider}",
            max_retries=20,
            min_backoff=100,
            max_backoff=5_000,
        )(run)
        returns[provider] = dramatiq.actor(
            broker=broker,
            actor_name=f"bench_{provider}_return",
            queue_name=f"bench.{provider}.returns",
            priority=Lane.RETURNS.priority,
            max_retries=20,
        )(run)
    worker = Worker(broker, worker_threads=THREADS, worker_timeout=100)
    worker.start()
    stop.wait()
    worker.stop(timeout=5_000)
    broker.close()
    clients.close()


# -- the run ------------------------------------------------------------------------------
def _context(sandbox: Any) -> dict[str, Any]:
    import requests

    from sandbox.salesforce.auth import DEFAULTS as SF_APP

    urls = dict(sandbox.urls)
    token = requests.post(
        f"{sandbox.origins['salesforce']}/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": SF_APP["client_id"],
            "client_secret": SF_APP["client_secret"],
            "refresh_token": SF_APP["refresh_token"],
        },
        verify=sandbox.ca_file,
        timeout=10,
    ).json()
    ws = requests.get(
        f"{urls['asana']}/workspaces",
        headers={"Authorization": f"Bearer {ASANA_PAT}"},
        timeout=10,
    ).json()["data"][0]["gid"]
    from sandbox.slack import TOKEN

    return {
        "urls": urls,
        "ca_file": sandbox.ca_file,
        "sf_instance": token["instance_url"],
        "sf_token": token["access_token"],
        "asana_workspace": ws,
        "slack_token": TOKEN,
    }


def run_mode(mode: str, sandbox: Any) -> dict[str, dict[str, Any]]:
    """Reset everything, push OPS per provider through `mode`, and measure."""
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    sandbox.reset()
    state = redis.Redis.from_url(STATE_URL)
    state.flushdb()
    redis.Redis.from_url(BROKER_URL).flushdb()
    ctx = _context(sandbox)
    spawn = multiprocessing.get_context("spawn")
    stop = spawn.Event()
    procs = [spawn.Process(target=worker_main, args=(mode, ctx, stop)) for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    broker = RedisBroker(url=BROKER_URL)
    for provider in PROVIDERS:
        actor = dramatiq.actor(
            broker=broker, actor_name=f"bench_{provider}", queue_name=f"bench.{provider}"
        )(_sender)
        state.sadd(f"{mode}:pending:{provider}", *range(OPS))
        for i in range(OPS):
            actor.send(i)
    started = time.monotonic()
    last_sf, last_change = -1, started
    while time.monotonic() - started < DEADLINE_S:
        left = {
            p: OPS - state.scard(f"{mode}:done:{p}") - state.scard(f"{mode}:dead:{p}")
            for p in PROVIDERS
        }
        sf_spent = sandbox.providers["salesforce"].api_used
        if sf_spent != last_sf:
            last_sf, last_change = sf_spent, time.monotonic()
        # Salesforce's remainder waits for tomorrow's budget: stop once its spending stops
        sf_settled = left.get("salesforce", 0) == 0 or time.monotonic() - last_change > 5
        if sf_settled and all(n == 0 for p, n in left.items() if p != "salesforce"):
            break
        time.sleep(0.5)
    elapsed_run = time.monotonic() - started
    answers = _answers() if mode == "meetsync" else {}
    stop.set()
    for p in procs:
        p.join(timeout=30)
        if p.is_alive():
            p.kill()
    broker.close()
    results = {p: _measure(mode, p, state, sandbox, elapsed_run) for p in PROVIDERS}
    for p, counts in answers.items():
        results[p]["answers"] = counts
    return results


def _answers() -> dict[str, dict[str, int]]:
    """How often each bucket answered granted, turn, queued, flow, slots...: where time went."""
    from workers.throttle.redis import RedisThrottle

    found = {
        s.bucket.removesuffix(":bench"): s.counts
        for s in RedisThrottle.from_url(STATE_URL).status()
    }
    return {p: counts for p, counts in found.items() if p in PROVIDERS}


def _sender(i: int, ticket: int = 0) -> None:
    """Stands in for the workers' actor: this process only sends."""


def _allowed(provider: str, elapsed: float) -> float:
    p = PROVIDERS[provider]
    if provider == "slack":
        channels = len(CHANNELS) * (SLACK_CHANNEL.burst + SLACK_CHANNEL.rate * elapsed)
        return min(p.burst + p.rate * elapsed, channels)
    return p.burst + p.rate * elapsed


def _measure(mode: str, provider: str, state: Any, sandbox: Any, run_s: float) -> dict[str, Any]:
    done = state.scard(f"{mode}:done:{provider}")
    dead = state.scard(f"{mode}:dead:{provider}")
    pending = state.scard(f"{mode}:pending:{provider}")
    times = sorted(float(t) for t in state.lrange(f"{mode}:times:{provider}", 0, -1))
    elapsed = times[-1] - times[0] if len(times) > 1 else 0.0
    if provider == "salesforce":
        spent = sandbox.providers["salesforce"].api_used
        utilization = spent / (SF_DAILY * (1 - SF_RESERVE))
    else:
        utilization = done / _allowed(provider, elapsed) if done else 0.0
    return {
        "utilization": round(utilization, 3),
        "http_429": int(state.hget(f"{mode}:429", provider) or 0),
        "lost": OPS - done - pending,
        "retries_spent": int(state.hget(f"{mode}:retries", provider) or 0),
        "done": done,
        "waiting": pending,
        "dead": dead,
        "seconds": round(elapsed, 1),
    }


def _world() -> dict[str, Any]:
    from sandbox.world import default_world

    world = default_world()
    world["slack_channels"] = list(world["slack_channels"]) + [
        {"name": c, "bot_member": True, "archived": False} for c in CHANNELS
    ]
    return world


def _print(title: str, results: dict[str, dict[str, Any]]) -> None:
    print(f"\n{title}")
    print(
        f"{'provider':<11}{'util':>7}{'429s':>7}{'lost':>6}{'retries':>9}{'done':>7}"
        f"{'waiting':>9}{'secs':>7}"
    )
    for name, r in results.items():
        print(
            f"{name:<11}{r['utilization']:>7.3f}{r['http_429']:>7}{r['lost']:>6}"
            f"{r['retries_spent']:>9}{r['done']:>7}{r['waiting']:>9}{r['seconds']:>7}"
        )
    from workers.throttle.status import reasons

    for name, r in results.items():
        if "answers" in r:
            counts = r["answers"]
            print(f"  {name}: granted {counts.get('granted', 0)}, waited: {reasons(counts)}")


def main() -> None:
    from sandbox.server import Sandbox

    keys = ("utilization", "http_429", "lost", "retries_spent")
    with Sandbox(world=_world(), options=SANDBOX_OPTIONS) as sandbox:
        ours = run_mode("meetsync", sandbox) if "meetsync" in MODES else {}
        _print("meetsync throttle", ours)
        theirs = run_mode("builtin", sandbox) if "builtin" in MODES else {}
        _print("dramatiq built-in rate limiters", theirs)
    print(
        json.dumps(
            {
                "providers": {p: {k: r[k] for k in keys} for p, r in ours.items()},
                "dramatiq_builtin": {p: {k: r[k] for k in keys} for p, r in theirs.items()},
            }
        )
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
