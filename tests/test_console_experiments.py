"""The console's Experiments page over plain HTTP: another org's experiment is not there."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from admin import experiments
from admin.tokens import mint_token
from meetsync.db.models import Experiment
from meetsync.settings import LLMSettings
from tests.admin_cli import Cli, make_cli
from tests.test_console_session import client, signed_in
from tests.test_experiments import spec


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    cli = make_cli(tmp_path, monkeypatch)
    cli.ok("orgs", "create", "acme")
    cli.ok("orgs", "create", "globex")
    return cli


def test_another_orgs_experiment_is_a_404_and_left_running(cli: Cli) -> None:
    # given globex's own experiment, and acme signed in
    with cli.session() as session:
        experiments.create(session, spec(name="globex-secret", orgs=["globex"]), LLMSettings())
        token = mint_token(session, "acme", "console").token
    http = client(cli)
    csrf = signed_in(http, token)

    # expect it missing from acme's list, its report a 404, and its forms 404 changing nothing
    assert "globex-secret" not in http.get("/console/experiments").text
    report = http.get("/console/experiments/globex-secret")
    assert report.status_code == 404 and "gpt-4o-mini" not in report.text
    for action, form in (("stop", {}), ("promote", {"arm": "v2"})):
        answer = http.post(
            f"/console/experiments/globex-secret/{action}", data=form | {"csrf": csrf}
        )
        assert answer.status_code == 404, (action, answer.text)
    with cli.session() as session:
        assert session.scalars(select(Experiment.state)).one() == "running"
        assert experiments.history(session, "action_items") == []
