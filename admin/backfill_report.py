"""The backfill report: every record's outcome and, for a dry run, every field it would write."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from admin.backfill import Summary
from admin.backfill_preview import Change

COLUMNS = [
    "kind", "ref", "meeting_id", "reason", "cost_usd", "destination", "action", "target",
    "ledger", "field", "current", "new", "changes",
]  # fmt: skip
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def report_data(summary: Summary, changes: list[Change], dry_run: bool) -> dict[str, Any]:
    return {
        "run_key": summary.run_key,
        "dry_run": dry_run,
        "state": summary.state,
        "counts": summary.counts,
        "spent_usd": round(summary.spent_usd, 6),
        "recovered": summary.recovered,
        "records": [asdict(o) for o in summary.outcomes],
        "changes": [asdict(c) for c in changes],
    }


def write_report(path: Path, summary: Summary, changes: list[Change], dry_run: bool) -> None:
    """JSON for a `.json` path, otherwise CSV (one row per record outcome and per field)."""
    if path.suffix.lower() == ".json":
        text = json.dumps(report_data(summary, changes, dry_run), indent=2, default=str)
        path.write_text(text + "\n", encoding="utf-8")
        return

    def inert(row: dict[str, Any]) -> dict[str, Any]:
        # a spreadsheet runs a cell starting with = + - @ (or a tab/CR before one) as a
        # formula: a transcript's "=HYPERLINK(...)" must stay text, so it gets a leading '
        return {
            k: f"'{v}" if isinstance(v, str) and v[:1] in FORMULA_STARTS else v
            for k, v in row.items()
        }

    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for outcome in summary.outcomes:
            writer.writerow(inert({**asdict(outcome), "cost_usd": round(outcome.cost_usd, 6)}))
        for change in changes:
            row = asdict(change)
            row["current"], row["new"] = _cell(row["current"]), _cell(row["new"])
            writer.writerow(inert({"kind": "change", **row}))


def _cell(value: Any) -> str:
    if value is None or isinstance(value, str):
        return value or ""
    return json.dumps(value, default=str)
