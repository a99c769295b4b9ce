"""An A/B test with known true approval rates, run through the real pipeline on the sandbox.

`python -m bench.experiments [--control-rate 0.6] [--treatment-rate 0.7] [--seed 7]`
starts the sandbox's OpenAI emulator (its deterministic rules model serves both arms: the
action-items prompts v1 and v2), seeds org acme with the example mapping whose Asana task
destinations wait for approval, and creates experiment `bench-items` (50/50). Each meeting
(the bundled samples, each delivered under a new id) goes through the real extract stage
(routing, cache key, the arm recorded on the insights) and plan stage (review requests);
then every request is approved or skipped through `admin.review.decide`, approved with its
arm's true rate. Every `--every` meetings the experiment's report is built, until each arm
has 1.5 times the decisions the power analysis predicts: the last look's approval test
names the winner, and `meetings_needed` is the first look from which every later look was
significant too (stopping at the first significant look would be peeking: it raises the
false-positive rate well above alpha).

Ends with one JSON line: {"winner", "true_winner", "meetings_needed",
"predicted_sample_size", ...}. `predicted_sample_size` is the power analysis on the true
rates (decisions per arm at alpha 0.05 and 80 % power, statsmodels `NormalIndPower`) and
`predicted_meetings` the meetings that makes at the observed decisions per meeting.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import tempfile
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from admin import experiments
from admin.meeting_store import store_meeting
from admin.review import Reviewer, decide
from extraction.experiments.report import build, sample_size
from meetsync.bootstrap import seed_demo
from meetsync.db.migrate import upgrade
from meetsync.db.models import InsightRecord, ReviewRequest
from meetsync.db.session import session_scope
from meetsync.samples import load_samples
from sandbox.server import Sandbox
from sandbox.settings_for import settings_for
from workers import stages
from workers.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]
HELD = ("customer-followups", "sprint-tasks")
NAME = "bench-items"
HORIZON = 1.5  # run until each arm has this many times the predicted decisions


def _mapping(workdir: Path) -> Path:
    body = yaml.safe_load((ROOT / "mappings" / "examples" / "acme.yaml").read_text())
    for destination in body["destinations"]:
        if destination["name"] in HELD:
            destination["review"] = {"mode": "approve", "approvers": ["host"]}
    path = workdir / "acme-review.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def _spec() -> dict[str, Any]:
    return {
        "name": NAME,
        "task": "action_items",
        "control": "control",
        "arms": [
            {"name": "control", "model": "gpt-4o-mini", "prompt_version": "v1", "share": 0.5},
            {"name": "treatment", "model": "gpt-4o-mini", "prompt_version": "v2", "share": 0.5},
        ],
        # the bench judges the arms itself; a guardrail must not stop one halfway
        "guardrails": {"min_samples": 1_000_000},
    }


def run(
    control_rate: float, treatment_rate: float, seed: int, every: int, max_meetings: int
) -> dict[str, Any]:
    """Meetings through extract, plan and review until the arms differ; the summary."""
    rng = random.Random(seed)
    rates = {"control": control_rate, "treatment": treatment_rate}
    workdir = Path(tempfile.mkdtemp(prefix="meetsync-bench-exp-"))
    samples = load_samples()
    with Sandbox(only=["openai"]) as sandbox:
        settings = settings_for(sandbox, database_url=f"sqlite:///{workdir}/bench.db")
        upgrade(settings.database_url)
        with session_scope(settings.database_url) as session:
            seed_demo(session, settings, _mapping(workdir))
            experiments.create(session, _spec(), settings.llm, "bench")
        runtime = Runtime(settings)
        per_arm = sample_size(control_rate, treatment_rate, 0.05) or max_meetings
        horizon = math.ceil(per_arm * HORIZON)
        decisions, looks, report, i = 0, [], None, 0
        for i in range(max_meetings):
            sample = samples[i % len(samples)]
            meeting = sample.model_copy(
                update={"meeting_id": f"{sample.meeting_id}-{i}", "event_id": None}
            )
            with session_scope(settings.database_url) as session:
                stored = store_meeting(session, meeting)
            stages.extract(runtime, stored.meeting_id)
            stages.plan(runtime, stored.meeting_id)
            with session_scope(settings.database_url) as session:
                arm = _arm_of(session, stored.meeting_id)
                requests = session.scalars(
                    select(ReviewRequest.id).where(ReviewRequest.meeting_id == stored.meeting_id)
                ).all()
            for request_id in requests:
                choice = "approve" if rng.random() < rates[arm] else "skip"
                decided = decide(settings, request_id, choice, Reviewer(admin=True))
                decisions += decided.ok
            if (i + 1) % every:
                continue
            with session_scope(settings.database_url) as session:
                report = build(session, NAME)
            looks.append((i + 1, report.arms[1].vs_control[1].significant))
            if min(a.approval.trials for a in report.arms) >= horizon:
                break
    meetings_run = i + 1
    # the verdict is the last look's; it was reached at the first look from which every
    # later look agreed (stopping at the first significant look alone would peek)
    final = report.arms[1].vs_control[1] if report is not None else None
    winner, meetings_needed, p_value = None, None, None
    if final is not None and final.significant and report is not None:
        rated = {a.arm: a.approval.rate or 0.0 for a in report.arms}
        winner = max(rated, key=lambda name: rated[name])
        p_value = final.p_value
        meetings_needed = next(
            n for n, _ in looks if all(significant for m, significant in looks if m >= n)
        )
    per_meeting = decisions / meetings_run if meetings_run else 0.0
    true_winner = (
        max(rates, key=lambda name: rates[name]) if control_rate != treatment_rate else None
    )
    observed = {}
    if report is not None:
        observed = {
            a.arm: {
                "meetings": a.meetings,
                "decisions": a.approval.trials,
                "approval": a.approval.rate,
            }
            for a in report.arms
        }
    return {
        "winner": winner,
        "true_winner": true_winner,
        "meetings_needed": meetings_needed,
        "predicted_sample_size": per_arm,
        "decisions_run": decisions,
        "predicted_meetings": (
            math.ceil(2 * per_arm / per_meeting) if per_arm and per_meeting else None
        ),
        "decisions_per_meeting": round(per_meeting, 2),
        "p_value": p_value,
        "true_rates": rates,
        "observed": observed,
        "meetings_run": meetings_run,
        "seed": seed,
        "test": f"two-proportion z-test, alpha 0.05, looked at every {every} meetings "
        f"until each arm had {HORIZON}x the predicted decisions",
    }


def _arm_of(session: Session, meeting_id: str) -> str:
    record = session.scalars(
        select(InsightRecord)
        .where(InsightRecord.meeting_id == meeting_id)
        .order_by(InsightRecord.id.desc())
    ).first()
    assert record is not None, meeting_id
    return str(record.arms[0]["arm"])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--control-rate", type=float, default=0.60)
    parser.add_argument("--treatment-rate", type=float, default=0.70)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--every", type=int, default=10, help="meetings between looks")
    parser.add_argument("--max-meetings", type=int, default=600)
    args = parser.parse_args(argv)
    result = run(args.control_rate, args.treatment_rate, args.seed, args.every, args.max_meetings)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
