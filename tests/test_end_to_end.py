"""A signed webhook in, exactly the expected tasks, records and recap out.

The same story runs on the embedded defaults (SQLite, in-process broker) and on the
production stack (PostgreSQL, Redis, a real `meetsync worker` process).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from intake.app import create_app
from intake.client import post_meeting
from intake.serving import BackgroundServer
from meetsync.bootstrap import seed_demo
from meetsync.db.migrate import upgrade
from meetsync.db.session import session_scope
from meetsync.models import MeetingOutput
from meetsync.settings import Settings, process_env
from sandbox.client import SandboxClient
from sandbox.server import Sandbox
from sandbox.settings_for import settings_for
from tests.admin_cli import admin_auth
from workers.actors import declare
from workers.broker import make_broker
from workers.inprocess import InProcessWorkers
from workers.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]
MAPPING = ROOT / "mappings" / "examples" / "acme.yaml"
FINAL = {"done", "partial", "failed"}

MEETING = MeetingOutput.model_validate(
    {
        "org_id": "acme",
        "meeting_id": "e2e-globex-1",
        "title": "Globex discovery call",
        "start": "2026-11-17T15:00:00Z",  # a Tuesday
        "end": "2026-11-17T15:40:00Z",
        "timezone": "America/New_York",
        "attendees": [
            {"name": "Dana Reyes", "email": "dana@acme.io", "internal": True},
            {"name": "Sam Patel", "email": "sam@acme.io", "internal": True},
            {"name": "Hank Scorpio", "email": "hank@globex.com", "internal": False},
        ],
        "transcript": [
            {"speaker": "Dana Reyes", "start": 2, "text": "Thanks for making the time, Hank."},
            {
                "speaker": "Hank Scorpio",
                "start": 9,
                "text": "Sure. Our reporting takes days because every team exports spreadsheets.",
            },
            {
                "speaker": "Hank Scorpio",
                "start": 20,
                "text": "We're also looking at Snowflake, to be transparent.",
            },
            {
                "speaker": "Dana Reyes",
                "start": 31,
                "text": "I'll send you the security questionnaire by Friday.",
            },
            {
                "speaker": "Sam Patel",
                "start": 44,
                "text": "I will set up a sandbox workspace for your data team by next Tuesday.",
            },
            {
                "speaker": "Hank Scorpio",
                "start": 58,
                "text": "Our budget for this is around $80k this year.",
            },
            {
                "speaker": "Dana Reyes",
                "start": 70,
                "text": "Great, next step is a technical deep dive with your data team.",
            },
        ],
        "summary": "Discovery with Globex: reporting pain, Snowflake in the mix, $80k budget.",
    }
)


@contextmanager
def embedded_stack(sandbox: Sandbox, sqlite_url: str) -> Iterator[tuple[Settings, str]]:
    server = BackgroundServer()
    settings = settings_for(
        sandbox, database_url=sqlite_url, broker_url="stub", public_base_url=server.url
    )
    _prepare(settings)
    workers = InProcessWorkers(settings, threads=2)
    server.start(create_app(settings, workers.start()))
    try:
        yield settings, server.url
    finally:
        server.stop()
        workers.stop()


RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


@contextmanager
def production_stack(
    sandbox: Sandbox, postgres_url: str, redis_url: str, broker_url: str
) -> Iterator[tuple[Settings, str]]:
    server = BackgroundServer()
    settings = settings_for(
        sandbox,
        database_url=postgres_url,
        broker_url=broker_url,
        redis_url=redis_url,
        public_base_url=server.url,
    )
    _prepare(settings)
    broker = make_broker(broker_url)
    pipeline = declare(broker, Runtime(settings))
    broker.flush_all()  # leftovers of an earlier run name meetings this database never had
    worker = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "meetsync"),
            "worker",
            "--processes",
            "1",
            "--threads",
            "2",
        ],
        env={**os.environ, **_as_env(settings)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server.start(create_app(settings, pipeline))
    try:
        yield settings, server.url
    finally:
        server.stop()
        worker.terminate()
        _, stderr = worker.communicate(timeout=30)
        assert b"Traceback" not in stderr, stderr.decode()[-3000:]


def _prepare(settings: Settings) -> None:
    upgrade(settings.database_url)
    with session_scope(settings.database_url) as session:
        seed_demo(session, settings, MAPPING)


def _as_env(settings: Settings) -> dict[str, str]:
    """The settings a separate worker process needs, with quick retries for the test."""
    return {**process_env(settings), "MEETSYNC_RETRY__MIN_BACKOFF_MS": "200"}


def wait_final(http: httpx.Client, meeting_id: str, timeout_s: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = http.get(f"/v1/meetings/{meeting_id}")
        assert answer.status_code == 200, answer.text
        status: dict[str, Any] = answer.json()
        if status["status"] in FINAL:
            return status
        time.sleep(0.2)
    raise AssertionError(f"meeting {meeting_id} did not finish: {status}")


def provider_state(sandbox: Sandbox, name: str) -> dict[str, Any]:
    return SandboxClient(sandbox.origins[name], verify=sandbox.ca_file).state()


def held_by_meetsync(sandbox: Sandbox) -> dict[str, list[dict[str, Any]]]:
    """What the providers hold that meetsync wrote, read through their inspection APIs."""
    salesforce = provider_state(sandbox, "salesforce")["records"]
    return {
        "asana": provider_state(sandbox, "asana")["tasks"],
        "salesforce_tasks": salesforce.get("Task", []),
        "opportunities": salesforce.get("Opportunity", []),
        "slack": provider_state(sandbox, "slack")["messages"],
    }


@pytest.fixture(
    params=[
        pytest.param("embedded", id="sqlite+stub"),
        pytest.param("redis", id="postgres+redis+worker", marks=pytest.mark.integration),
        pytest.param("rabbitmq", id="postgres+rabbitmq+worker", marks=pytest.mark.integration),
    ]
)
def stack(
    request: pytest.FixtureRequest, clean_sandbox: Sandbox, tmp_path: Path
) -> Iterator[tuple[Settings, str]]:
    if request.param == "embedded":
        with embedded_stack(clean_sandbox, f"sqlite:///{tmp_path}/e2e.db") as running:
            yield running
    else:
        postgres_url = request.getfixturevalue("postgres_url")
        redis_url = request.getfixturevalue("redis_url")
        # a namespace of its own: no other run's worker may take this test's messages
        namespaced = f"{redis_url}?namespace=e2e-{uuid.uuid4().hex[:8]}"
        broker_url = namespaced if request.param == "redis" else RABBITMQ_URL
        with production_stack(clean_sandbox, postgres_url, redis_url, broker_url) as running:
            yield running


def test_a_signed_webhook_ends_as_exactly_the_expected_objects(
    stack: tuple[Settings, str], clean_sandbox: Sandbox
) -> None:
    settings, url = stack
    secret = settings.webhook_secret.get_secret_value()
    with httpx.Client(
        base_url=url, trust_env=False, timeout=10, headers=admin_auth(settings)
    ) as http:
        accepted = post_meeting(http, secret, MEETING)
        assert accepted.status_code == 202
        status = wait_final(http, accepted.json()["meeting_id"])
    assert status["status"] == "done", status
    held = held_by_meetsync(clean_sandbox)

    tasks = {t["name"]: t for t in held["asana"]}
    assert len(tasks) == len(held["asana"]) == 2
    questionnaire = next(t for name, t in tasks.items() if "security questionnaire" in name.lower())
    sandbox_ws = next(t for name, t in tasks.items() if "sandbox" in name.lower())
    assert questionnaire["due_on"] == "2026-11-20"
    assert sandbox_ws["due_on"] == "2026-11-24"
    assert questionnaire["assignee"] and sandbox_ws["assignee"]

    logged = [t for t in held["salesforce_tasks"] if "Globex discovery call" in t["Subject"]]
    assert len(logged) == 1 and logged[0]["Status"] == "Completed"
    globex = next(o for o in held["opportunities"] if o["Name"].startswith("Globex"))
    assert "technical deep dive" in (globex["NextStep"] or "")

    recaps = [m for m in held["slack"] if (m.get("metadata") or {}).get("event_type")]
    assert len(recaps) == 1
    pushed = {(p["provider"], p["state"]) for p in status["pushes"]}
    assert pushed == {("asana", "done"), ("salesforce", "done"), ("slack", "done")}
    assert all(p["external_id"] for p in status["pushes"])


def test_a_second_delivery_of_the_same_meeting_writes_nothing_new(
    stack: tuple[Settings, str], clean_sandbox: Sandbox
) -> None:
    settings, url = stack
    secret = settings.webhook_secret.get_secret_value()
    with httpx.Client(
        base_url=url, trust_env=False, timeout=10, headers=admin_auth(settings)
    ) as http:
        first = post_meeting(http, secret, MEETING).json()["meeting_id"]
        wait_final(http, first)
        before = held_by_meetsync(clean_sandbox)
        llm_calls = provider_state(clean_sandbox, "openai")["completions"]
        assert llm_calls > 0
        second = post_meeting(http, secret, MEETING)  # a new event id: a real redelivery
        assert second.status_code == 202 and second.json()["meeting_id"] == first
        wait_final(http, first)
    after = held_by_meetsync(clean_sandbox)
    # the extraction cache: an unchanged transcript costs no second LLM call
    assert provider_state(clean_sandbox, "openai")["completions"] == llm_calls
    assert {k: len(v) for k, v in after.items()} == {k: len(v) for k, v in before.items()}
    assert [m["ts"] for m in after["slack"]] == [m["ts"] for m in before["slack"]]
