"""A provider's refusal reaches the operator in its own words: `meetsync status` and
`meetsync dlq` after a run against a sandbox that refuses like the real APIs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from cli import app
from intake.client import post_meeting
from sandbox.client import SandboxClient
from sandbox.server import Sandbox
from tests.admin_cli import admin_auth
from tests.test_end_to_end import MEETING, embedded_stack, wait_final


@pytest.fixture
def run_meeting(
    clean_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """Run MEETING through the embedded stack; then the CLI reads the same database."""
    database_url = f"sqlite:///{tmp_path}/refusals.db"

    def run() -> dict[str, Any]:
        with (
            embedded_stack(clean_sandbox, database_url) as (settings, url),
            httpx.Client(
                base_url=url, trust_env=False, timeout=10, headers=admin_auth(settings)
            ) as http,
        ):
            secret = settings.webhook_secret.get_secret_value()
            meeting_id = post_meeting(http, secret, MEETING).json()["meeting_id"]
            final = wait_final(http, meeting_id)
        monkeypatch.setenv("MEETSYNC_DATABASE_URL", database_url)
        return final

    from meetsync.settings import get_settings

    get_settings.cache_clear()
    yield run
    get_settings.cache_clear()
    for name in ("openai", "salesforce"):
        SandboxClient(clean_sandbox.origins[name], verify=clean_sandbox.ca_file).clear_faults()


def _cli(*args: str) -> str:
    from meetsync.settings import get_settings

    get_settings.cache_clear()
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_an_llm_account_out_of_quota_fails_the_meeting_visibly(
    clean_sandbox: Sandbox, run_meeting: Any
) -> None:
    # given an OpenAI account with no credit left: every call is 429 insufficient_quota
    SandboxClient(clean_sandbox.origins["openai"]).arm(
        "error", times=None, path="/v1/chat/completions", status=429, code="insufficient_quota"
    )
    final = run_meeting()
    # expect the meeting failed at once (not retried as a rate limit), saying why
    assert final["status"] == "failed"
    assert "out of quota" in final["error"]
    report = json.loads(_cli("status", "--json"))
    (failed,) = report["failed_meetings"]
    assert failed["org_id"] == "acme" and "insufficient_quota" in failed["reason"]
    assert "You exceeded your current quota" in failed["reason"]
    assert "out of quota" in _cli("dlq", "list")
    calls = clean_sandbox.providers["openai"].stats()["requests"]
    assert sum(n for endpoint, n in calls.items() if "chat/completions" in endpoint) == 1


def test_a_flow_refusing_salesforce_writes_shows_its_message_in_the_dlq(
    clean_sandbox: Sandbox, run_meeting: Any
) -> None:
    # given an org whose record-triggered flow refuses every Task and Event meetsync writes
    admin = SandboxClient(clean_sandbox.origins["salesforce"], verify=clean_sandbox.ca_file)
    admin.arm(
        "error", times=None, method="PATCH", path="/services/data/*/sobjects/*/Meetsync_Key__c/*",
        status=400, code="CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
    )  # fmt: skip
    run_meeting()
    # expect the Salesforce ops dead-lettered as permanent, with the flow's own words
    listed = json.loads(_cli("dlq", "list", "--json"))
    ours = [d for d in listed if d["kind"] == "op" and d["connector"] == "salesforce"]
    assert ours and all(d["state"] == "failed" for d in ours)
    assert all("Tasks from meetings need a Type" in d["reason"] for d in ours)
    assert all(d["attempts"] == 1 for d in ours)  # permanent: never retried
    report = json.loads(_cli("status", "--json"))
    states = {(r["connector"], r["state"]) for r in report["ops"]}
    assert ("salesforce", "failed") in states and ("asana", "done") in states
