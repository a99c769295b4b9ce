"""What operators see: metrics after a real run, logs that follow a meeting and say nothing
private, readiness of the API and of a worker, one line with the reason for every failure.

The production story runs PostgreSQL, Redis and a real `meetsync worker` process (its
Prometheus server on a port of its own); the failure story runs on the embedded stack.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from intake.app import create_app
from intake.client import post_meeting
from intake.serving import BackgroundServer
from meetsync.logging import JsonFormatter
from meetsync.settings import Settings
from sandbox.server import Sandbox
from sandbox.settings_for import settings_for
from tests.admin_cli import admin_auth
from tests.test_end_to_end import MEETING, _as_env, _prepare, embedded_stack, wait_final
from workers.actors import declare
from workers.broker import make_broker
from workers.runtime import Runtime


class JsonLines(logging.Handler):
    """Every record of this process, formatted as production formats it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def json_logs() -> Iterator[JsonLines]:
    handler = JsonLines()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


Scrape = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Scrape:
    """Every sample of a scrape, by name and labels."""
    found: Scrape = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(scraped: Scrape, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in scraped.items() if n == name and wanted <= ls)


def delta(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def private_strings(settings: Settings) -> list[str]:
    """What must never reach a log: transcript lines, names, emails, summary, secrets."""
    meeting = MEETING
    words = [line.text for line in meeting.transcript] + [meeting.summary or ""]
    for person in meeting.attendees:
        words += [person.name, person.email or ""]
    secrets = [settings.webhook_secret.get_secret_value(), settings.llm.api_key.get_secret_value()]
    secrets += [key.get_secret_value() for key in settings.encryption_keys]
    for conn in settings.connections.values():
        secrets += [v.get_secret_value() for v in conn.credentials.values()]
    return [w for w in words + secrets if w]


def leaks(lines: list[str], private: list[str]) -> list[tuple[str, str]]:
    return [(p, line[:300]) for line in lines for p in private if p.lower() in line.lower()]


@pytest.fixture
def worker_stack(
    clean_sandbox: Sandbox, postgres_url: str, redis_url: str, tmp_path: Path
) -> Iterator[dict[str, Any]]:
    """The API in this process, one real worker process on a namespaced Redis broker."""
    server = BackgroundServer()
    broker_url = f"{redis_url}?namespace=obs-{uuid.uuid4().hex[:8]}"
    settings = settings_for(
        clean_sandbox,
        database_url=postgres_url,
        broker_url=broker_url,
        redis_url=redis_url,
        public_base_url=server.url,
    )
    _prepare(settings)
    broker = make_broker(broker_url)
    pipeline = declare(broker, Runtime(settings))
    metrics_port = _free_port()
    ready_file = tmp_path / "ready"
    env = {
        **os.environ,
        **_as_env(settings),
        "MEETSYNC_LOG_LEVEL": "DEBUG",
        "MEETSYNC_READY_FILE": str(ready_file),
        "dramatiq_prom_port": str(metrics_port),
        "dramatiq_prom_host": "127.0.0.1",
        "dramatiq_prom_db": str(tmp_path / "prom"),
    }
    worker = subprocess.Popen(
        [str(Path(sys.executable).parent / "meetsync"), "worker", "--processes", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server.start(create_app(settings, pipeline))
    running: dict[str, Any] = {
        "settings": settings,
        "url": server.url,
        "metrics": f"http://127.0.0.1:{metrics_port}/metrics",
        "ready_file": ready_file,
    }

    def stop() -> str:
        """Stop the API and the worker (SIGTERM); the worker's stderr."""
        server.stop()
        if worker.returncode is None:
            worker.terminate()
        _, stderr = worker.communicate(timeout=60)
        return (stderr or b"").decode()

    running["stop"] = stop
    try:
        yield running
    finally:
        stop()


def scrape(url: str, timeout_s: float = 30) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            answer = httpx.get(url, timeout=5, trust_env=False)
            answer.raise_for_status()
            return answer.text
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.integration
def test_a_real_run_shows_in_metrics_follows_the_meeting_in_logs_and_leaks_nothing(
    worker_stack: dict[str, Any], json_logs: JsonLines
) -> None:
    settings: Settings = worker_stack["settings"]
    correlation = uuid.uuid4().hex
    with httpx.Client(
        base_url=worker_stack["url"],
        trust_env=False,
        timeout=10,
        headers=admin_auth(worker_stack["settings"]),
    ) as http:
        before = samples(http.get("/metrics").text)  # this process's counters are cumulative
        http.headers["X-Request-Id"] = correlation
        accepted = post_meeting(http, settings.webhook_secret.get_secret_value(), MEETING)
        assert accepted.status_code == 202
        assert accepted.headers["X-Request-Id"] == correlation
        meeting_id = accepted.json()["meeting_id"]
        assert wait_final(http, meeting_id)["status"] == "done"
        refused = http.post("/v1/webhooks/meeting-completed", content=b"{}")
        assert refused.status_code == 401
        ready = http.get("/readyz")
        api = samples(http.get("/metrics").text)
    worker = samples(scrape(worker_stack["metrics"]))

    # expect: readiness of both, and the ready file of the worker
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok", "redis": "ok"}
    assert worker_stack["ready_file"].exists()

    # expect: the API's counts and the store's gauges
    assert delta(before, api, "meetsync_webhooks_total", status="202", code="accepted") == 1
    assert delta(before, api, "meetsync_webhooks_total", status="401") == 1
    assert value(api, "meetsync_ops", provider="asana", state="done") == 2
    assert value(api, "meetsync_ops", provider="slack", state="done") == 1
    assert value(api, "meetsync_meetings", status="planned") == 1
    assert value(api, "meetsync_connections", provider="salesforce", status="active") >= 1

    # expect: dramatiq's series and ours from the worker process
    assert value(worker, "dramatiq_messages_total", actor_name="extract") == 1
    # planned inside the extract message: no message of its own
    assert value(worker, "dramatiq_messages_total", actor_name="plan") == 0
    assert value(worker, "dramatiq_message_duration_milliseconds_count", queue_name="extract") == 1
    assert value(worker, "meetsync_push_outcomes_total", provider="asana", state="done") == 2
    assert value(worker, "meetsync_push_seconds_count", provider="salesforce") >= 1
    assert value(worker, "meetsync_extraction_cache_total", result="miss") == 1
    assert value(worker, "meetsync_llm_requests_total", org="acme") >= 1
    assert value(worker, "meetsync_llm_tokens_total", org="acme", kind="input") > 0
    assert value(worker, "meetsync_queue_wait_seconds_count", queue="extract") == 1
    assert ("meetsync_queue_depth", frozenset({("queue", "extract")})) in worker
    for name, labels in [*api, *worker]:  # bounded labels: no meeting id, no op key
        assert meeting_id not in {v for _, v in labels}, name

    stderr = worker_stack["stop"]()
    assert "Traceback" not in stderr, stderr[-3000:]
    worker_lines = [line for line in stderr.splitlines() if line.startswith("{")]
    api_lines = json_logs.lines
    assert worker_lines and api_lines
    # expect: every line of the worker is JSON, and the meeting's lines carry the request's id
    records = [json.loads(line) for line in worker_lines]
    calls = [r for r in records if r.get("event") == "provider_call"]
    assert {r["provider"] for r in calls} == {"asana", "salesforce", "slack"}
    assert all(r["correlation_id"] == correlation for r in calls), [
        (r["msg"], r.get("correlation_id")) for r in calls
    ]
    assert all(r["meeting"] == meeting_id and r["op"] and r["org"] == "acme" for r in calls)
    accepted_line = [json.loads(line) for line in api_lines if '"event": "webhook"' in line]
    assert accepted_line and accepted_line[0]["correlation_id"] == correlation
    refused_line = [json.loads(line) for line in api_lines if "webhook_refused" in line]
    assert refused_line and refused_line[0]["reason"] == "missing_signature"

    # expect: nothing private anywhere, even at DEBUG (and the scan would see it)
    private = private_strings(settings)
    assert leaks(['{"msg": "owner dana@acme.io"}'], private)
    assert leaks(worker_lines + api_lines, private) == []


def test_a_failed_write_is_one_log_line_with_its_reason_and_a_dead_letter_count(
    clean_sandbox: Sandbox, tmp_path: Path, json_logs: JsonLines
) -> None:
    # given: Asana refuses every new task
    clean_sandbox.admin("asana").configure_faults(
        [{"kind": "error", "status": 400, "method": "POST", "path": "/api/1.0/tasks"}]
    )
    with (
        embedded_stack(clean_sandbox, f"sqlite:///{tmp_path}/obs.db") as (settings, url),
        httpx.Client(
            base_url=url, trust_env=False, timeout=10, headers=admin_auth(settings)
        ) as http,
    ):
        # when: a meeting comes in
        before = samples(http.get("/metrics").text)
        accepted = post_meeting(http, settings.webhook_secret.get_secret_value(), MEETING)
        status = wait_final(http, accepted.json()["meeting_id"])
        scraped = samples(http.get("/metrics").text)

    # expect: each failed op logged once, with provider, op, meeting and the provider's reason
    assert status["status"] == "partial", status
    failed = [json.loads(line) for line in json_logs.lines if '"event": "op_failed"' in line]
    keys = [p["key"] for p in status["pushes"] if p["state"] == "failed"]
    assert sorted(r["op"] for r in failed) == sorted(keys) and len(keys) == 2
    assert all(r["provider"] == "asana" and r["reason"] for r in failed)
    assert all(r["meeting"] == accepted.json()["meeting_id"] for r in failed)
    dead = delta(before, scraped, "meetsync_dead_letters_total", provider="asana", state="failed")
    errors = delta(before, scraped, "meetsync_provider_errors_total", error="Permanent")
    assert dead == 2 and errors == 2
    assert value(scraped, "meetsync_ops", provider="asana", state="failed") == 2
    assert leaks(json_logs.lines, private_strings(settings)) == []
