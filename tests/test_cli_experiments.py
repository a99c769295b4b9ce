"""`meetsync experiments …` and `meetsync eval --experiment` on a temporary database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.admin_cli import make_cli

SPEC = """\
name: items-v2
task: action_items
control: control
arms:
  - {name: control, model: gpt-4o-mini, prompt_version: v1, share: 0.5}
  - {name: v2, model: gpt-4o-mini, prompt_version: v2, share: 0.5}
"""


def test_an_experiment_from_start_to_promotion_and_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = make_cli(tmp_path, monkeypatch)
    spec = tmp_path / "items.yaml"
    spec.write_text(SPEC)
    assert "items-v2 v1 running on action_items" in cli.ok("experiments", "create", str(spec))
    report = json.loads(cli.ok("experiments", "report", "items-v2", "--json"))
    assert [a["arm"] for a in report["arms"]] == ["control", "v2"]
    assert report["test"].startswith("two-proportion z-test")
    assert "control" in cli.ok("experiments", "report", "items-v2")
    assert "gpt-4o-mini@v2" in cli.ok("experiments", "promote", "items-v2", "v2")
    assert "promoted" in cli.ok("experiments", "list")
    assert "rollback to v0" in cli.ok("experiments", "rollback", "action_items")
    history = cli.ok("experiments", "defaults", "action_items")
    assert history.splitlines() == [
        "v1 gpt-4o-mini@v2 promoted items-v2 v1 arm v2",
        "v2 gpt-4o-mini@v1 rollback to v0 (settings)",
    ]


def test_a_bad_spec_is_refused_with_where_it_is_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = make_cli(tmp_path, monkeypatch)
    spec = tmp_path / "bad.yaml"
    spec.write_text(SPEC.replace("share: 0.5}\n", "share: 0.25}\n", 1))
    refused = cli.fails("experiments", "create", str(spec))
    assert "arms: live shares add up to 0.75, not 1" in refused.stderr


@pytest.mark.slow
def test_eval_compares_an_experiments_arms_side_by_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = make_cli(tmp_path, monkeypatch)
    spec = tmp_path / "items.yaml"
    spec.write_text(SPEC)
    cli.ok("experiments", "create", str(spec))
    out_file = tmp_path / "eval.json"
    out = cli.ok("eval", "--sandbox", "--experiment", "items-v2", "--json", str(out_file))
    reports = json.loads(out_file.read_text())
    assert len(reports) == 2 and all(r["cost_usd"] > 0 for r in reports)
    assert reports[0]["meetings"] == reports[1]["meetings"]  # the same meetings
    assert "control (gpt-4o-mini@v1)" in out and "v2 (gpt-4o-mini@v2)" in out
