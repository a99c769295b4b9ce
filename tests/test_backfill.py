"""Backfill: sources, bad records, the cursor, budget, pacing, dry run and the CLI."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from admin.backfill import Backfill, Outcome, Pacer, parse_day
from admin.backfill_preview import DryRun
from admin.backfill_report import write_report
from admin.sources import Window, open_source
from admin.sources.notes_api import NotesApi
from intake.serving import BackgroundServer
from meetsync.bootstrap import ensure_org, seed_demo
from meetsync.db.migrate import upgrade
from meetsync.db.models import BackfillCursor, Meeting, OpRecord
from meetsync.db.session import session_scope
from meetsync.settings import Settings
from sandbox.server import Sandbox
from sandbox.settings_for import settings_for
from workers.inprocess import InProcessWorkers

ROOT = Path(__file__).resolve().parents[1]
MAPPING = ROOT / "mappings" / "examples" / "acme.yaml"
WINDOW = Window("acme", datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))


def record(i: int, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "org_id": "acme",
        "meeting_id": f"past-{i}",
        "title": f"Globex sync {i}",
        "start": f"2026-03-{1 + i % 28:02d}T15:00:00Z",
        "end": f"2026-03-{1 + i % 28:02d}T15:30:00Z",
        "attendees": [
            {"name": "Dana Reyes", "email": "dana@acme.io", "internal": True},
            {"name": "Hank Scorpio", "email": "hank@globex.com"},
        ],
        "transcript": [
            {
                "speaker": "Dana Reyes",
                "start": 1,
                "text": f"I'll send the SOC 2 report {i} by Friday.",
            }
        ],
    }
    body.update(overrides)
    return body


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


class Recorder:
    """A pipeline that only remembers what was enqueued, and at which priority."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bool]] = []

    def enqueue_extract(
        self, meeting_id: str, *, backfill: bool = False, org: str | None = None
    ) -> None:
        self.sent.append((meeting_id, backfill))


@pytest.fixture
def db(sqlite_url: str) -> Settings:
    upgrade(sqlite_url)
    with session_scope(sqlite_url) as session:
        ensure_org(session, "acme", "Acme")
        ensure_org(session, "globex", "Globex")
    return Settings(database_url=sqlite_url)


def stored_count(settings: Settings) -> int:
    with session_scope(settings.database_url) as session:
        return int(session.scalar(select(func.count()).select_from(Meeting)) or 0)


def test_bad_records_are_reported_one_by_one_and_skipped(db: Settings, tmp_path: Path) -> None:
    lines = [
        record(1),
        "{not json",
        record(2, org_id="globex"),
        record(1, title="the same meeting again"),
        record(3, start="yesterday"),
        record(4, start="2025-01-01T00:00:00Z", end="2025-01-01T01:00:00Z"),
        record(5),
    ]
    source = open_source(f"file:{write_jsonl(tmp_path / 'm.jsonl', lines)}", db)
    pipeline = Recorder()
    job = Backfill(db, source, WINDOW, pipeline)
    summary = job.run(job.begin())
    bad = {o.ref: o.reason for o in summary.outcomes if o.kind == "bad"}
    assert bad == {
        "m.jsonl:2": "malformed JSON",
        "m.jsonl:3": "another org's meeting (globex)",
        "m.jsonl:4": "duplicate of meeting past-1",
        "m.jsonl:5": bad["m.jsonl:5"],
    }
    assert str(bad["m.jsonl:5"]).startswith(
        "invalid record: start: Input should be a valid datetime"
    )
    assert summary.counts == {"enqueued": 2, "bad": 4, "out_of_range": 1}
    assert all(backfill for _, backfill in pipeline.sent) and len(pipeline.sent) == 2
    assert stored_count(db) == 2


def test_an_interrupted_run_resumes_after_the_last_stored_record(
    db: Settings, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "m.jsonl", [record(i) for i in range(10)])
    first = Recorder()
    job = Backfill(db, open_source(f"file:{path}", db), WINDOW, first)

    def interrupt_at_four(outcome: Outcome) -> None:
        if outcome.meeting_id and len(first.sent) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        job.run(job.begin(), interrupt_at_four)
    assert stored_count(db) == 3
    second = Recorder()
    again = Backfill(db, open_source(f"file:{path}", db), WINDOW, second)
    summary = again.begin()
    assert summary.resumed_from == "0:3" and summary.recovered == 3  # none finished yet
    again.run(summary)
    fresh = second.sent[summary.recovered :]
    assert len(fresh) == 7 and stored_count(db) == 10
    assert {m for m, _ in first.sent} | {m for m, _ in second.sent} == set(select_ids(db))


def select_ids(settings: Settings) -> list[str]:
    with session_scope(settings.database_url) as session:
        return list(session.scalars(select(Meeting.id)))


def test_the_budget_stops_the_run_and_a_larger_one_continues(db: Settings, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "m.jsonl", [record(i) for i in range(6)])
    source = open_source(f"file:{path}", db)
    job = Backfill(db, source, WINDOW, Recorder(), budget_usd=0.003)
    summary = job.run(job.begin())
    assert summary.state == "budget_reached"
    assert 0 < summary.counts["enqueued"] < 6 and summary.spent_usd <= 0.003
    with session_scope(db.database_url) as session:
        assert session.scalars(select(BackfillCursor)).one().state == "budget_reached"
    more = Backfill(db, source, WINDOW, Recorder(), budget_usd=1.0)
    resumed = more.run(more.begin())
    assert resumed.state == "read" and resumed.counts["enqueued"] == 6


def test_the_pacer_keeps_to_the_max_rate() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(4.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(9):
        pacer.wait()
    assert now[0] == pytest.approx(2.0)  # 9 records at 4/s: the last starts at t=2s


def test_the_feeder_holds_back_while_live_meetings_run(db: Settings, tmp_path: Path) -> None:
    # given a hold that says "live meetings running" once before each of two records
    path = write_jsonl(tmp_path / "m.jsonl", [record(1), record(2)])
    answers = iter([1, 0, 1, 0])
    asked: list[int] = []

    def hold() -> int:
        asked.append(stored_count(db))
        return next(answers)

    job = Backfill(db, open_source(f"file:{path}", db), WINDOW, Recorder(), hold=hold)
    # when the run goes through the source
    job.run(job.begin())
    # expect each record stored only after the hold let it go
    assert asked == [0, 0, 1, 1]
    assert stored_count(db) == 2


def test_the_stored_source_replays_meetings_already_in_the_database(db: Settings) -> None:
    path_job = Backfill(db, open_source("stored", db), WINDOW, Recorder())
    assert path_job.run(path_job.begin()).counts == {}
    with session_scope(db.database_url) as session:
        from admin.meeting_store import store_meeting
        from meetsync.models import MeetingOutput

        for i in range(3):
            store_meeting(session, MeetingOutput.model_validate(record(i)))
    pipeline = Recorder()
    job = Backfill(db, open_source("stored", db), WINDOW, pipeline, restart=True)
    summary = job.run(job.begin())
    assert summary.counts == {"enqueued": 3} and len(pipeline.sent) == 3


def notes_api(pages: list[list[Any]], token: str) -> FastAPI:
    app = FastAPI()
    calls: list[dict[str, str]] = []
    app.state.calls = calls

    @app.get("/meetings")
    def meetings(request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {token}":
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        calls.append(dict(request.query_params))
        page = int(request.query_params.get("cursor") or 0)
        following = str(page + 1) if page + 1 < len(pages) else None
        total = sum(len(p) for p in pages)
        return JSONResponse({"meetings": pages[page], "next_cursor": following, "total": total})

    return app


def test_the_notes_api_source_follows_the_documented_contract(db: Settings) -> None:
    pages = [[record(0), record(1)], [record(2), {"org_id": "acme"}], [record(3)]]
    app = notes_api(pages, "notes-token")
    with BackgroundServer(app) as server:
        source = NotesApi(server.url, "notes-token", page_size=2)
        assert source.count(WINDOW) == 5
        pipeline = Recorder()
        job = Backfill(db, source, WINDOW, pipeline)

        def stop_after_page_two_first(outcome: Outcome) -> None:
            if outcome.ref == "page 2 #0":
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            job.run(job.begin(), stop_after_page_two_first)
        resumed = Backfill(db, source, WINDOW, Recorder())
        summary = resumed.begin()
        assert json.loads(summary.resumed_from or "") == {"page": "1", "index": 0}
        resumed.run(summary)
        source.close()
    assert summary.counts == {"enqueued": 4, "bad": 1}
    assert stored_count(db) == 4
    first = app.state.calls[1]
    assert first["org"] == "acme" and first["since"].startswith("2026-03-01")
    assert first["until"].startswith("2026-04-01") and first["limit"] == "2"


def test_a_notes_api_refusing_the_token_stops_with_a_clear_error(db: Settings) -> None:
    with BackgroundServer(notes_api([[record(0)]], "right")) as server:
        source = NotesApi(server.url, "wrong")
        job = Backfill(db, source, WINDOW, Recorder())
        with pytest.raises(Exception, match="answered 401"):
            job.run(job.begin())
        source.close()


@pytest.fixture
def stack(sandbox: Sandbox, sqlite_url: str) -> Iterator[tuple[Settings, InProcessWorkers]]:
    sandbox.reset()
    settings = settings_for(sandbox, database_url=sqlite_url, broker_url="stub")
    upgrade(sqlite_url)
    with session_scope(sqlite_url) as session:
        seed_demo(session, settings, MAPPING)
    workers = InProcessWorkers(settings, threads=2)
    workers.start()
    yield settings, workers
    workers.stop()


def writes(sandbox: Sandbox) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in ("salesforce", "asana", "slack"):
        for route, n in sandbox.admin(name).stats()["requests"].items():
            if route.split()[0] in {"POST", "PATCH", "PUT", "DELETE"} and "oauth2" not in route:
                counts[name] = counts.get(name, 0) + n
    return counts


def run_to_the_end(job: Backfill, workers: InProcessWorkers) -> Any:
    summary = job.run(job.begin())
    workers.join(timeout_s=120)
    finished, touched = job.progress()
    assert finished == touched
    return job.finish(summary)


def test_a_second_run_over_the_same_range_writes_nothing_new(
    stack: tuple[Settings, InProcessWorkers], sandbox: Sandbox, tmp_path: Path
) -> None:
    settings, workers = stack
    path = write_jsonl(tmp_path / "m.jsonl", [record(i) for i in range(3)])
    source = open_source(f"file:{path}", settings)
    first = run_to_the_end(Backfill(settings, source, WINDOW, workers.pipeline), workers)
    assert first.state == "done" and first.counts == {"enqueued": 3}
    after_first = writes(sandbox)
    assert after_first  # the first run wrote to the providers
    second = run_to_the_end(Backfill(settings, source, WINDOW, workers.pipeline), workers)
    assert second.counts == {"unchanged": 3}
    assert writes(sandbox) == after_first


def test_a_dry_run_shows_current_and_new_values_and_writes_nothing(
    stack: tuple[Settings, InProcessWorkers], sandbox: Sandbox, tmp_path: Path
) -> None:
    settings, _ = stack
    talk = [
        {"speaker": "Hank Scorpio", "start": 5, "text": "Our budget for this is around $80k."},
        {"speaker": "Dana Reyes", "start": 9, "text": "Next step is a technical deep dive."},
    ]
    path = write_jsonl(tmp_path / "m.jsonl", [record(1, transcript=talk), "{oops"])
    preview = DryRun(settings, open_source(f"file:{path}", settings), WINDOW, ["salesforce"])
    summary = preview.run()
    assert summary.counts == {"previewed": 1, "bad": 1}
    assert summary.spent_usd > 0  # it really extracted
    assert {c.destination.split("/")[0] for c in preview.changes} == {"salesforce"}
    stage = next(c for c in preview.changes if c.field == "StageName")
    assert (stage.target, stage.current) == ("Opportunity", "Qualification")  # read live
    assert any(c.changes for c in preview.changes)
    assert writes(sandbox) == {} and stored_count(settings) == 0
    with session_scope(settings.database_url) as session:
        assert session.scalar(select(func.count()).select_from(BackfillCursor)) == 0
        assert session.scalar(select(func.count()).select_from(OpRecord)) == 0
    write_report(tmp_path / "r.json", summary, preview.changes, dry_run=True)
    write_report(tmp_path / "r.csv", summary, preview.changes, dry_run=True)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["dry_run"] and len(report["changes"]) == len(preview.changes)
    with (tmp_path / "r.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["kind"] for r in rows].count("change") == len(preview.changes)
    assert {r["kind"] for r in rows} == {"previewed", "bad", "change"}


def test_the_cli_runs_a_dry_run_and_prints_each_destination(
    stack: tuple[Settings, InProcessWorkers],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from cli import app

    settings, _ = stack
    path = write_jsonl(tmp_path / "m.jsonl", [record(1)])
    monkeypatch.setattr("cli.backfill.get_settings", lambda: settings)
    result = CliRunner().invoke(
        app,
        [
            "backfill",
            "--org",
            "acme",
            "--since",
            "2026-03-01",
            "--source",
            f"file:{path}",
            "--dry-run",
            "--report",
            str(tmp_path / "r.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "salesforce/acme-salesforce" in result.output and "dry run done" in result.output
    assert (tmp_path / "r.json").exists() and stored_count(settings) == 0


def test_dates_parse_as_utc() -> None:
    assert parse_day("2026-03-01") == datetime(2026, 3, 1, tzinfo=UTC)


def test_a_dry_run_at_80_columns_is_a_short_summary_and_json_on_demand(
    stack: tuple[Settings, InProcessWorkers],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from cli import app

    # given three past meetings and an 80-column terminal
    settings, _ = stack
    path = write_jsonl(tmp_path / "m.jsonl", [record(i) for i in (1, 2, 3)])
    monkeypatch.setattr("cli.backfill.get_settings", lambda: settings)
    monkeypatch.setenv("COLUMNS", "80")
    args = ["backfill", "--org", "acme", "--since", "2026-03-01", "--source", f"file:{path}",
            "--dry-run"]  # fmt: skip

    # when an operator previews them
    result = CliRunner().invoke(app, args)

    # expect one line per destination and where the details are, every line within 80
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) <= 12, result.stdout
    assert "--report" in result.stdout and "3 meeting(s)" in result.stdout
    assert max(len(line) for line in lines) <= 80

    # and --json prints the report itself
    as_json = CliRunner().invoke(app, [*args, "--json"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    assert data["dry_run"] and len({c["meeting_id"] for c in data["changes"]}) == 3
