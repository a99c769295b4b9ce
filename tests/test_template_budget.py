"""A mapping template cannot stall the service: what it may cost is bounded, checked when
saved (with where and what to change), and a template over budget at plan time fails its
meeting with the reason, at once, instead of running for minutes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from admin.meeting_store import store_meeting
from admin.tokens import mint_token
from intake.app import create_app
from mappings import PlanError
from meetsync.bootstrap import apply_mapping
from meetsync.db.models import InsightRecord, Meeting
from sandbox.server import Sandbox
from tests.admin_cli import Cli, add_sandbox_connections, make_cli
from tests.test_admin_preview import INSIGHTS, MEETING
from workers import stages
from workers.runtime import Runtime

ACME = (Path(__file__).resolve().parents[1] / "mappings" / "examples" / "acme.yaml").read_text()
SUBJECT = '"Meeting: {{ meeting.title }}"'
PATH = "destinations[1].fields.Subject.template"


class NoPipeline:
    def enqueue_extract(
        self, meeting_id: str, *, backfill: bool = False, org: str | None = None
    ) -> None:
        raise AssertionError("the admin API never enqueues")


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox) -> Cli:
    cli = make_cli(tmp_path, monkeypatch)
    cli.ok("orgs", "create", "acme")
    add_sandbox_connections(cli, sandbox)
    return cli


@pytest.fixture
def api(cli: Cli) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with cli.session() as session:
        token = mint_token(session, "acme").token
    with TestClient(create_app(cli.settings(), NoPipeline())) as client:
        yield client, {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("template", "said"),
    [
        pytest.param('"{{ 9**(9**7) }}"', "bits", id="huge-power"),
        pytest.param(
            '\'{% for i in "x"*100000 %}{% for j in "x"*100000 %}{% endfor %}{% endfor %}\'',
            "loops ran more than",
            id="nested-loops",
        ),
        pytest.param("\"{{ 'x' * 10**9 }}\"", "repeating", id="huge-repeat"),
        pytest.param("\"{{ 'x'|center(10**9) }}\"", "center", id="huge-filter-width"),
        pytest.param(
            "\"{{ meeting.update({'title': 'x'}) }}\"", "cannot change", id="mutates-context"
        ),
    ],
)
def test_a_costly_template_is_refused_when_saved_quickly_and_located(
    api: tuple[TestClient, dict[str, str]], template: str, said: str
) -> None:
    client, headers = api
    body = ACME.replace(SUBJECT, template, 1)
    assert body != ACME

    # when the mapping is validated, then put
    started = time.monotonic()
    checked = client.post(
        "/v1/admin/orgs/acme/mappings/validate", json={"body": body, "against": []}, headers=headers
    )
    put = client.put("/v1/admin/orgs/acme/mappings", json={"body": body}, headers=headers)
    took = time.monotonic() - started

    # expect both refusals within a second, naming the YAML path and line, and saying why
    assert took < 1.0
    assert checked.status_code == 200 and checked.json()["ok"] is False
    located = [p for p in checked.json()["problems"] if p["path"] == PATH]
    assert any(said in p["message"] + (p["fix"] or "") for p in located), located
    assert all(p["line"] is not None for p in located)
    assert put.status_code == 422
    assert any(p["path"] == PATH for p in put.json()["detail"]["problems"])
    # and the API still answers
    assert client.get("/v1/admin/orgs/acme/mappings", headers=headers).json() == []


def test_a_template_over_budget_at_plan_time_fails_at_once_with_its_reason(cli: Cli) -> None:
    # given a stored mapping whose template costs what the meeting's data makes it cost
    # (nested loops over its title's characters), stored without the save-time check
    costly = (
        '"{% for a in meeting.title * 50 %}{% for b in meeting.title * 50 %}'
        '{% endfor %}{% endfor %}"'
    )
    with cli.session() as session:
        apply_mapping(session, "acme", ACME.replace(SUBJECT, costly, 1))
        stored = store_meeting(session, MEETING)
        session.add(
            InsightRecord(
                meeting_id=stored.meeting_id,
                cache_key="given",
                insights=INSIGHTS.model_dump(mode="json"),
            )
        )

    # when the plan stage runs
    started = time.monotonic()
    with pytest.raises(PlanError) as refused:
        stages.plan(Runtime(cli.settings()), stored.meeting_id)

    # expect a refusal in well under a second, naming the budget it blew
    assert time.monotonic() - started < 1.0
    assert "loops ran more than" in str(refused.value)
    with cli.session() as session:
        meeting = session.get(Meeting, stored.meeting_id)
        assert meeting is not None and meeting.status != "planned"
