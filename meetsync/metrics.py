"""Prometheus metrics: the ones meetsync counts, and what the store says at scrape time.

Counted where things happen (every API and worker process):

| metric                                   | labels                    |
| ---------------------------------------- | ------------------------- |
| `meetsync_webhooks_total`                | status, code              |
| `meetsync_push_seconds`                  | provider, action          |
| `meetsync_push_outcomes_total`           | provider, state           |
| `meetsync_provider_errors_total`         | provider, error           |
| `meetsync_dead_letters_total`            | provider, state           |
| `meetsync_meetings_failed_total`         | stage                     |
| `meetsync_throttle_wait_seconds`         | bucket                    |
| `meetsync_throttle_utilisation`          | bucket                    |
| `meetsync_llm_requests_total`            | org, model, task          |
| `meetsync_llm_tokens_total`              | org, model, kind          |
| `meetsync_llm_cost_usd_total`            | org, model                |
| `meetsync_extraction_cache_total`        | result                    |
| `meetsync_queue_wait_seconds`            | queue                     |
| `meetsync_queue_depth`                   | queue                     |

Read from the database when the API is scraped (`StoreCollector`): ops by provider and
state (`awaiting_review` and any later state included, generically), meetings by status,
connections by provider and status, backfill meetings by org and outcome.

Label values are bounded: providers, states, error classes, buckets (connector and
connection), orgs, models, queues. Never a meeting id, an op key or free text.

Worker processes run in prometheus-client's multi-process mode: `meetsync worker` sets
`PROMETHEUS_MULTIPROC_DIR` before any metric exists and dramatiq's `Prometheus`
middleware serves every process's values on `dramatiq_prom_port` (9191).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from meetsync.db.models import BackfillCursor, Connection, Meeting, OpRecord
from meetsync.db.session import session_scope

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
WAIT_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600)

WEBHOOKS = Counter("meetsync_webhooks_total", "Webhook deliveries by answer", ["status", "code"])
PUSH_SECONDS = Histogram(
    "meetsync_push_seconds",
    "Time a provider took to apply (or find) one op",
    ["provider", "action"],
    buckets=LATENCY_BUCKETS,
)
PUSH_OUTCOMES = Counter(
    "meetsync_push_outcomes_total", "What push deliveries came to", ["provider", "state"]
)
PROVIDER_ERRORS = Counter(
    "meetsync_provider_errors_total",
    "Provider calls that raised, by error class",
    ["provider", "error"],
)
DEAD_LETTERS = Counter(
    "meetsync_dead_letters_total",
    "Ops parked as failed, dead or paused",
    ["provider", "state"],
)
MEETINGS_FAILED = Counter("meetsync_meetings_failed_total", "Meetings that ended failed", ["stage"])
THROTTLE_WAIT = Histogram(
    "meetsync_throttle_wait_seconds",
    "Waits the throttle handed out (a push or extraction sent back for its turn)",
    ["bucket"],
    buckets=WAIT_BUCKETS,
)
THROTTLE_UTILISATION = Gauge(
    "meetsync_throttle_utilisation",
    "Share of a bucket in use: the larger of slots held/concurrency and tokens spent/burst",
    ["bucket"],
    multiprocess_mode="mostrecent",
)
LLM_REQUESTS = Counter("meetsync_llm_requests_total", "LLM calls made", ["org", "model", "task"])
LLM_TOKENS = Counter(
    "meetsync_llm_tokens_total", "LLM tokens by kind (input, output)", ["org", "model", "kind"]
)
LLM_COST = Counter(
    "meetsync_llm_cost_usd_total", "LLM spend in USD at the configured prices", ["org", "model"]
)
EXTRACTION_CACHE = Counter(
    "meetsync_extraction_cache_total", "Extractions answered from the cache, or not", ["result"]
)
QUEUE_WAIT = Histogram(
    "meetsync_queue_wait_seconds",
    "How long a message waited in its queue past its due time (queue age at dequeue)",
    ["queue"],
    buckets=WAIT_BUCKETS,
)
QUEUE_DEPTH = Gauge(
    "meetsync_queue_depth",
    "Messages waiting in a queue (ready ones, not delayed)",
    ["queue"],
    multiprocess_mode="mostrecent",
)


class StoreCollector(Collector):
    """Gauges read from the database at scrape time: what is, not what happened."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    def collect(self) -> Iterator[Metric]:
        ops = GaugeMetricFamily(
            "meetsync_ops", "Ops in the ledger by provider and state", labels=["provider", "state"]
        )
        meetings = GaugeMetricFamily("meetsync_meetings", "Meetings by status", labels=["status"])
        connections = GaugeMetricFamily(
            "meetsync_connections",
            "Connections by provider and status (paused: its credential stopped working)",
            labels=["provider", "status"],
        )
        backfill = GaugeMetricFamily(
            "meetsync_backfill_meetings",
            "Meetings a backfill run went through, by org, run state and outcome",
            labels=["org", "state", "outcome"],
        )
        with session_scope(self.database_url) as session:
            for provider, state, count in session.execute(
                select(OpRecord.connector, OpRecord.state, func.count()).group_by(
                    OpRecord.connector, OpRecord.state
                )
            ):
                ops.add_metric([provider, state], count)
            for status, count in session.execute(
                select(Meeting.status, func.count()).group_by(Meeting.status)
            ):
                meetings.add_metric([status], count)
            for provider, status, count in session.execute(
                select(Connection.provider, Connection.status, func.count()).group_by(
                    Connection.provider, Connection.status
                )
            ):
                connections.add_metric([provider, status], count)
            totals: dict[tuple[str, str, str], float] = {}
            for org, state, counts in session.execute(
                select(BackfillCursor.org_id, BackfillCursor.state, BackfillCursor.counts)
            ):
                for outcome, n in (counts or {}).items():
                    key = (org, state, str(outcome))
                    totals[key] = totals.get(key, 0) + float(n)
            for labels, value in sorted(totals.items()):
                backfill.add_metric(list(labels), value)
        yield from (ops, meetings, connections, backfill)


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def registry(extra: Iterable[Collector] = ()) -> CollectorRegistry:
    """What a scrape of this process shows: its metrics (every process's, in multi-process
    mode) and the extra collectors."""
    if multiprocess():
        scraped = CollectorRegistry()
        MultiProcessCollector(scraped)
    else:
        from prometheus_client import REGISTRY

        scraped = CollectorRegistry()
        scraped.register(_Forward(REGISTRY))
    for collector in extra:
        scraped.register(collector)
    return scraped


def exposition(scraped: CollectorRegistry) -> tuple[bytes, str]:
    """The text format of a registry, and its content type."""
    return generate_latest(scraped), CONTENT_TYPE_LATEST


def llm_call(org: str, model: str, task: str, tokens_in: int, tokens_out: int, usd: float) -> None:
    """Count one LLM call: its request, its tokens, its price."""
    LLM_REQUESTS.labels(org, model, task).inc()
    LLM_TOKENS.labels(org, model, "input").inc(tokens_in)
    LLM_TOKENS.labels(org, model, "output").inc(tokens_out)
    LLM_COST.labels(org, model).inc(usd)


class _Forward(Collector):
    """The process's default registry, inside a registry of our own (with extras)."""

    def __init__(self, source: Any) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        yield from self.source.collect()
