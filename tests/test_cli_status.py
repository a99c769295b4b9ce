"""`meetsync status`: what a meeting run leaves behind, as an operator sees it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from intake.client import post_meeting
from meetsync.cli import app
from sandbox.server import Sandbox
from tests.test_end_to_end import MEETING, embedded_stack, wait_final


def test_status_shows_meetings_ops_and_llm_spend_per_org(
    clean_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database_url = f"sqlite:///{tmp_path}/status.db"
    with (
        embedded_stack(clean_sandbox, database_url) as (settings, url),
        httpx.Client(base_url=url, trust_env=False, timeout=10) as http,
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
