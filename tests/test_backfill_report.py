"""The backfill CSV report: text from meetings never becomes a spreadsheet formula."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from admin.backfill import Outcome, Summary
from admin.backfill_preview import Change
from admin.backfill_report import write_report


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('=HYPERLINK("https://evil.example","open")', id="equals"),
        pytest.param("+1+cmd|' /C calc'!A0", id="plus"),
        pytest.param("-2+3", id="minus"),
        pytest.param("@SUM(A1:A9)", id="at"),
        pytest.param("\t=1+1", id="tab"),
    ],
)
def test_formula_looking_cells_are_written_as_text(tmp_path: Path, text: str) -> None:
    # given a record and a planned field whose values look like formulas
    summary = Summary(run_key="r", resumed_from=None)
    summary.add(Outcome(ref=text, kind="bad", reason=text))
    change = Change(
        ref="1", meeting_id="m", destination="salesforce/acme", action="update",
        target="Opportunity", ledger="new", field="NextStep", current=text, new=text,
        changes=True,
    )  # fmt: skip
    # when the report is written as CSV
    write_report(tmp_path / "r.csv", summary, [change], dry_run=True)
    # expect every such cell to start with a quote, its text otherwise intact
    with (tmp_path / "r.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    cells = [rows[0]["ref"], rows[0]["reason"], rows[1]["current"], rows[1]["new"]]
    assert cells == [f"'{text}"] * 4


def test_plain_cells_and_numbers_are_left_alone(tmp_path: Path) -> None:
    summary = Summary(run_key="r", resumed_from=None)
    summary.add(Outcome(ref="rec-1", kind="enqueued", meeting_id="m1", cost_usd=-0.5))
    write_report(tmp_path / "r.csv", summary, [], dry_run=False)
    with (tmp_path / "r.csv").open(newline="") as handle:
        row = next(csv.DictReader(handle))
    assert (row["ref"], row["meeting_id"], row["cost_usd"]) == ("rec-1", "m1", "-0.5")
