"""The eval harness around the scores: datasets that point at their mistakes, unlabelled
meetings, dumps, comparisons and the judge, through the real SDK and the emulator."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from extraction.dataset import SCHEMA_FILE, InvalidDataset, json_schema, load_dataset
from extraction.eval import EvalOptions, MatchSettings, compare, run_eval
from meetsync.settings import LLMSettings
from sandbox.server import Sandbox

DATASETS = Path(__file__).resolve().parents[1] / "extraction" / "datasets"


def _small_set(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "set"
    folder.mkdir()
    for name in names:
        shutil.copy(DATASETS / "dev" / f"{name}.json", folder)
    return folder


def test_the_schema_file_is_the_one_the_code_validates_with() -> None:
    assert json.loads(SCHEMA_FILE.read_text()) == json_schema()


@pytest.mark.parametrize("folder", [pytest.param(n, id=n) for n in ("dev", "test")])
def test_bundled_sets_are_valid(folder: str) -> None:
    assert load_dataset(DATASETS / folder)


def test_a_bad_item_gets_a_located_error(tmp_path: Path) -> None:
    # given a dataset whose second gold item has a spoken date and an unknown key
    folder = _small_set(tmp_path, "cs_weekly_sync")
    path = folder / "cs_weekly_sync.json"
    raw = json.loads(path.read_text())
    raw["gold"]["action_items"][1]["due_date"] = "next Tuesday"
    raw["gold"]["action_items"][3]["owner_mail"] = "lee@acme.io"
    raw["gold"]["action_items"][4]["owner_email"] = "nobody@acme.io"
    path.write_text(json.dumps(raw))
    # when it is loaded, expect every problem with its file, JSON path and fix
    with pytest.raises(InvalidDataset) as caught:
        load_dataset(folder)
    problems = {p.path: p for p in caught.value.problems}
    assert set(problems) == {"$.gold.action_items[1].due_date",
                             "$.gold.action_items[3].owner_mail"}  # fmt: skip
    assert problems["$.gold.action_items[1].due_date"].fix == "write the date as YYYY-MM-DD"
    assert all(p.file == str(path) for p in caught.value.problems)
    # and once the shape is right, the owner is checked against the attendees
    del raw["gold"]["action_items"][3]["owner_mail"]
    raw["gold"]["action_items"][1]["due_date"] = "2026-11-25"
    path.write_text(json.dumps(raw))
    with pytest.raises(InvalidDataset, match=r"action_items\[4\]\.owner_email.*not an attendee"):
        load_dataset(folder)


def test_the_cli_reports_located_errors_before_calling_any_model(tmp_path: Path) -> None:
    folder = _small_set(tmp_path, "initech_qbr")
    raw = json.loads((folder / "initech_qbr.json").read_text())
    del raw["gold"]["action_items"][0]["title"]
    (folder / "initech_qbr.json").write_text(json.dumps(raw))
    # no --sandbox and no server: a model call would fail differently
    result = CliRunner().invoke(app, ["eval", "--dataset", str(folder)])
    assert result.exit_code == 2
    assert "$.gold.action_items[0].title" in result.output
    assert "add `title`" in result.output


def test_missing_action_items_must_be_marked_unlabelled(tmp_path: Path) -> None:
    folder = _small_set(tmp_path, "initech_qbr")
    raw = json.loads((folder / "initech_qbr.json").read_text())
    del raw["gold"]["action_items"]
    (folder / "initech_qbr.json").write_text(json.dumps(raw))
    with pytest.raises(InvalidDataset, match=r"gold\.unlabelled"):
        load_dataset(folder)
    raw["gold"]["unlabelled"] = ["action_items"]
    (folder / "initech_qbr.json").write_text(json.dumps(raw))
    assert load_dataset(folder)[0].action_items is None


def test_unlabelled_meetings_run_for_cost_but_score_nothing(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    folder = _small_set(tmp_path, "initech_qbr", "ops_retro_unlabelled")
    dump = tmp_path / "dump"
    settings = LLMSettings(base_url=sandbox.urls["openai"])
    report = run_eval(folder, settings, options=EvalOptions(dump_dir=dump))
    by_name = {s.name: s for s in report.per_meeting}
    unlabelled = by_name["ops_retro_unlabelled"]
    assert not unlabelled.labelled and unlabelled.predicted > 0
    assert unlabelled.items.tp == unlabelled.items.fp == unlabelled.items.fn == 0
    assert report.labelled_meetings == 1 and report.meetings == 2
    assert report.fp == by_name["initech_qbr"].items.fp  # the retro's items are not counted
    assert unlabelled.latency_s > 0
    # the dump holds every prediction with its evidence and its match
    qbr = json.loads((dump / "initech_qbr.json").read_text())
    assert len(qbr["predictions"]) == by_name["initech_qbr"].predicted
    first = qbr["predictions"][0]
    assert first["evidence"] and first["evidence_span"]["utterance_index"] >= 0
    assert first["match"]["verdict"] in {"tp", "fp"}
    retro = json.loads((dump / "ops_retro_unlabelled.json").read_text())
    assert retro["labelled"] is False and retro["predictions"][0]["match"] is None
    assert json.loads((dump / "report.json").read_text())["meetings"] == 2


def test_the_curve_trades_recall_for_precision(sandbox: Sandbox) -> None:
    settings = LLMSettings(base_url=sandbox.urls["openai"])
    report = run_eval(DATASETS / "dev", settings, options=EvalOptions(resamples=200))
    curve = report.pr_curve
    assert curve[0].threshold == 0.0 and curve[0].f1 == report.f1
    assert [p.kept for p in curve] == sorted((p.kept for p in curve), reverse=True)
    assert curve[-1].recall <= curve[0].recall


def test_compare_runs_variants_side_by_side(sandbox: Sandbox, tmp_path: Path) -> None:
    folder = _small_set(tmp_path, "initech_qbr", "sprint_planning")
    settings = LLMSettings(base_url=sandbox.urls["openai"])
    reports = compare(folder, settings, ["gpt-4o-mini", "gpt-4o@v1"])
    assert [r.models["action_items"] for r in reports] == ["gpt-4o-mini", "gpt-4o"]
    assert reports[0].f1 == reports[1].f1  # the same rules model behind both names
    assert reports[1].cost_usd > reports[0].cost_usd


def test_judge_mode_matches_and_says_so(sandbox: Sandbox, tmp_path: Path) -> None:
    folder = _small_set(tmp_path, "initech_qbr", "cs_weekly_sync")
    settings = LLMSettings(base_url=sandbox.urls["openai"])
    options = EvalOptions(match=MatchSettings(judge_model="gpt-4o-mini"), resamples=100)
    judged = run_eval(folder, settings, options=options)
    fuzzy = run_eval(folder, settings, options=EvalOptions(resamples=100))
    assert judged.matching.judge_model == "gpt-4o-mini" and judged.matching.judge_prompt == "v1"
    assert fuzzy.matching.judge_model is None and fuzzy.matching.similarity == "token_set"
    assert judged.tp > 0 and abs(judged.tp - fuzzy.tp) <= 2
    served = sandbox.providers["openai"].snapshot()["requests"]
    assert any(r["schema"] == "Verdict" for r in served)


def test_the_cli_compares_dumps_and_names_its_matching(tmp_path: Path) -> None:
    folder = _small_set(tmp_path, "initech_qbr", "standup_letters_api")
    dump = tmp_path / "dump"
    runner = CliRunner()
    # compare: one column per variant
    variants = ["--compare", "gpt-4o-mini", "--compare", "gpt-4o@v2"]
    compared = runner.invoke(app, ["eval", "--sandbox", "--dataset", str(folder), *variants])
    assert compared.exit_code == 0, compared.output
    assert "gpt-4o-mini" in compared.output and "gpt-4o@v2" in compared.output
    # one run: intervals, the matching used, per meeting, the curve; and a dump
    report_file = tmp_path / "report.json"
    single = runner.invoke(app, ["eval", "--sandbox", "--dataset", str(folder), "--similarity",
                                 "token_sort", "--threshold", "65", "--dump", str(dump),
                                 "--json", str(report_file)])  # fmt: skip
    assert single.exit_code == 0, single.output
    assert "token_sort similarity ≥ 65" in single.output
    assert "per meeting" in single.output and "precision/recall by confidence" in single.output
    report = json.loads(report_file.read_text())
    assert report["matching"] == {"similarity": "token_sort", "threshold": 65.0,
                                  "judge_model": None, "judge_prompt": None}  # fmt: skip
    assert report["intervals"]["seed"] == 17
    assert sorted(p.name for p in dump.iterdir()) == [
        "initech_qbr.json", "report.json", "standup_letters_api.json"
    ]  # fmt: skip
