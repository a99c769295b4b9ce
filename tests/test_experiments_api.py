"""Experiments and ratings through the admin API: scoped to the token's org."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from admin import experiments
from admin.tokens import mint_token
from intake.app import create_app
from meetsync.db.models import Meeting, Rating
from tests.admin_cli import make_cli
from tests.test_admin_api import NoPipeline, auth
from tests.test_experiments import spec


def test_an_org_admin_reads_its_experiments_report_and_rates_a_meeting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = make_cli(tmp_path, monkeypatch)
    cli.ok("orgs", "create", "acme")
    cli.ok("orgs", "create", "globex")
    with cli.session() as session:
        tokens = {org: mint_token(session, org).token for org in ("acme", "globex")}
        experiments.create(session, spec(orgs=["acme"]), cli.settings().llm)
        meeting = Meeting(
            org_id="acme", external_id="m1", title="m1", payload={}, transcript_hash="h"
        )
        session.add(meeting)
        session.flush()
        meeting_id = meeting.id
    with TestClient(create_app(cli.settings(), NoPipeline())) as client:
        acme, globex = auth(tokens["acme"]), auth(tokens["globex"])
        listed = client.get("/v1/admin/orgs/acme/experiments", headers=acme).json()
        assert [e["name"] for e in listed] == ["items-v2"]
        assert client.get("/v1/admin/orgs/globex/experiments", headers=globex).json() == []
        report = client.get("/v1/admin/orgs/acme/experiments/items-v2/report", headers=acme)
        assert report.status_code == 200 and report.json()["control"] == "control"
        hidden = client.get("/v1/admin/orgs/globex/experiments/items-v2/report", headers=globex)
        assert hidden.status_code == 404
        rated = client.post(
            f"/v1/admin/orgs/acme/meetings/{meeting_id}/ratings",
            json={"value": "down", "by": "dana@acme.io"},
            headers=acme,
        )
        assert rated.status_code == 200, rated.text
        foreign = client.post(
            f"/v1/admin/orgs/globex/meetings/{meeting_id}/ratings",
            json={"value": "up"},
            headers=globex,
        )
        assert foreign.status_code == 404
    with cli.session() as session:
        ratings = session.query(Rating).all()
        assert [(r.meeting_id, r.value, r.rated_by) for r in ratings] == [
            (meeting_id, "down", "dana@acme.io")
        ]
