"""`meetsync eval` on the bundled dev set with the sandbox's rules model."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli import app


def test_eval_prints_scores_and_writes_the_report(tmp_path: Path) -> None:
    report_file = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["eval", "--sandbox", "--json", str(report_file)])
    assert result.exit_code == 0, result.output
    assert "action items F1" in result.output
    report = json.loads(report_file.read_text())
    assert report["meetings"] >= 8
    # the offline baseline users see in the demo must stay honestly good
    assert report["f1"] >= 0.85
    assert report["grounding_rate"] == 1.0
    assert report["input_tokens"] > 0 and report["cost_usd"] > 0


def test_eval_refuses_a_missing_dataset(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "--dataset", str(tmp_path / "nope")])
    assert result.exit_code == 2  # a usage error, before any model is called
    assert "Invalid value" in result.output
