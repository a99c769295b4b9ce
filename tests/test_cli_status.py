"""`meetsync status`: what a meeting run leaves behind, as an operator sees it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from cli import app
from connectors.base import Limits
from intake.client import post_meeting
from sandbox.server import Sandbox
from tests.admin_cli import admin_auth
from tests.test_end_to_end import MEETING, embedded_stack, wait_final
from workers.throttle.buckets import Ask
from workers.throttle.redis import RedisThrottle


def test_status_shows_meetings_ops_and_llm_spend_per_org(
    clean_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database_url = f"sqlite:///{tmp_path}/status.db"
    with (
        embedded_stack(clean_sandbox, database_url) as (settings, url),
        httpx.Client(
            base_url=url, trust_env=False, timeout=10, headers=admin_auth(settings)
        ) as http,
    ):
        meeting_id = post_meeting(http, settings.webhook_secret.get_secret_value(), MEETING).json()[
            "meeting_id"
        ]
        wait_final(http, meeting_id)
    monkeypatch.setenv("MEETSYNC_DATABASE_URL", database_url)
    from meetsync.settings import get_settings

    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["status", "--json"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [(r["org_id"], r["count"]) for r in report["meetings"]] == [("acme", 1)]
    assert {row["connector"] for row in report["ops"]} == {"asana", "salesforce", "slack"}
    assert all(row["state"] == "done" for row in report["ops"])
    spend = report["spend"]
    assert spend and spend[0]["org_id"] == "acme"
    assert spend[0]["input_tokens"] > 0 and spend[0]["usd"] > 0


def test_status_throttles_shows_tokens_waits_and_cooldowns_of_the_shared_buckets(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given workers that used a Slack channel past its burst and met an Asana 429
    slack = Ask(
        "slack:acme-slack",
        Limits(rate=10, burst=10, concurrency=8),
        flow="acme/C1",
        org="acme",
        flow_limits=Limits(rate=1, burst=2, concurrency=1),
    )
    throttle = RedisThrottle.from_url(redis_url)
    decisions = [throttle.acquire(slack) for _ in range(3)]
    for d in decisions:
        if d.granted:
            throttle.release(slack, d.lease)
    throttle.penalize("asana:acme-asana", 30)

    # when an operator asks, on another host, how the throttles stand
    monkeypatch.setenv("MEETSYNC_REDIS_URL", redis_url)
    monkeypatch.setenv("MEETSYNC_THROTTLE__BACKEND", "redis")
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps cells at the terminal's width
    rows = {r["bucket"]: r for r in json.loads(_cli("status", "throttles", "--json"))}
    table = _cli("status", "throttles")

    # expect the grants and the wait of the channel, and the cooldown the 429 set
    assert [(d.granted, d.reason) for d in decisions] == [
        (True, "granted"),
        (False, "turn"),
        (False, "turn"),
    ]
    assert rows["slack:acme-slack"]["counts"] == {"granted": 1, "turn": 2}
    assert rows["slack:acme-slack"]["active_flows"] == 1
    assert rows["asana:acme-asana"]["cooldown_ms"] > 25_000
    assert rows["asana:acme-asana"]["counts"]["429"] == 1
    assert "slack:acme-slack" in table and "asana:acme-asana" in table
    assert "turn 2" in table


def _cli(*args: str) -> str:
    from meetsync.settings import get_settings

    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, list(args))
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    return result.output
