"""Experiments: assignment, shadow arms, what judges an arm, guardrails, promote and rollback."""

from __future__ import annotations

import math
from collections import Counter
from statistics import NormalDist
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.orm import Session

from admin import experiments
from admin.errors import Invalid
from admin.meeting_store import store_meeting
from extraction.experiments import InvalidExperiment, assign, parse_spec, routing, unit_of
from extraction.experiments.report import build
from extraction.experiments.routing import route
from meetsync.bootstrap import ensure_org
from meetsync.db import models
from meetsync.db.migrate import upgrade
from meetsync.db.models import InsightRecord, Meeting, Rating, ReviewRequest, ShadowExtraction
from meetsync.db.session import engine_for as session_engine
from meetsync.db.session import session_scope
from meetsync.samples import load_sample
from meetsync.settings import LLMSettings
from sandbox.server import Sandbox
from sandbox.settings_for import settings_for
from workers import experiments as pipeline_experiments
from workers import stages
from workers.runtime import Runtime

LLM = LLMSettings()


def spec(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "items-v2",
        "task": "action_items",
        "control": "control",
        "arms": [
            {"name": "control", "model": "gpt-4o-mini", "prompt_version": "v1", "share": 0.5},
            {"name": "v2", "model": "gpt-4o-mini", "prompt_version": "v2", "share": 0.5},
        ],
    }
    return base | changes


# --- assignment ---------------------------------------------------------------------------


def test_assignment_is_deterministic_and_close_to_the_shares_over_10000_meetings() -> None:
    given = parse_spec(
        spec(
            arms=[
                {"name": "control", "model": "gpt-4o-mini", "prompt_version": "v1", "share": 0.5},
                {"name": "a", "model": "gpt-4o", "prompt_version": "v1", "share": 0.3},
                {"name": "b", "model": "gpt-4o-mini", "prompt_version": "v2", "share": 0.2},
            ]
        ),
        LLM,
    )
    units = [f"meeting:m{i}" for i in range(10_000)]
    first = [assign(given, u).name for u in units]
    again = [assign(given, u).name for u in units]
    counts = Counter(first)
    assert first == again
    for name, share in (("control", 0.5), ("a", 0.3), ("b", 0.2)):
        sd = math.sqrt(10_000 * share * (1 - share))
        assert abs(counts[name] - 10_000 * share) < 4 * sd, (name, counts)


def test_sticky_per_org_gives_every_meeting_of_an_org_the_same_arm() -> None:
    given = parse_spec(spec(sticky="org"), LLM)
    arms = {assign(given, unit_of(given, f"m{i}", "acme", {})).name for i in range(200)}
    assert len(arms) == 1


def test_sticky_per_user_follows_the_organiser() -> None:
    given = parse_spec(spec(sticky="user"), LLM)
    payload = {"attendees": [{"email": "Dana@acme.io"}]}
    units = {unit_of(given, f"m{i}", "acme", payload) for i in range(50)}
    assert units == {"user:acme:dana@acme.io"}


def test_a_stopped_arm_gives_its_meetings_to_control_and_no_one_else_moves() -> None:
    given = parse_spec(spec(), LLM)
    units = [f"meeting:m{i}" for i in range(500)]
    before = {u: assign(given, u).name for u in units}
    after = {u: assign(given, u, stopped={"v2"}).name for u in units}
    assert set(after.values()) == {"control"}
    assert all(after[u] == "control" for u in units if before[u] == "control")


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        pytest.param({"task": "summaries"}, "task:", id="unknown-task"),
        pytest.param(
            {
                "arms": [
                    {
                        "name": "control",
                        "model": "gpt-4o-mini",
                        "prompt_version": "v1",
                        "share": 0.5,
                    },
                    {"name": "v2", "model": "gpt-4o-mini", "prompt_version": "v2", "share": 0.4},
                ]
            },
            "arms: live shares add up to 0.9",
            id="shares-short",
        ),
        pytest.param(
            {
                "arms": [
                    {
                        "name": "control",
                        "model": "gpt-4o-mini",
                        "prompt_version": "v1",
                        "share": 0.5,
                    },
                    {"name": "v2", "model": "no-such-model", "prompt_version": "v1", "share": 0.5},
                ]
            },
            "arms[1].model: unknown model 'no-such-model'",
            id="unknown-model",
        ),
        pytest.param(
            {
                "arms": [
                    {
                        "name": "control",
                        "model": "gpt-4o-mini",
                        "prompt_version": "v1",
                        "share": 0.5,
                    },
                    {"name": "v9", "model": "gpt-4o-mini", "prompt_version": "v9", "share": 0.5},
                ]
            },
            "arms[1].prompt_version: no prompt action_items/v9.md",
            id="unknown-prompt",
        ),
        pytest.param({"control": "nobody"}, "control: no arm 'nobody'", id="unknown-control"),
    ],
)
def test_a_bad_spec_is_refused_where_it_is_wrong(changes: dict[str, Any], where: str) -> None:
    with pytest.raises(InvalidExperiment) as refused:
        parse_spec(spec(**changes), LLM)
    assert str(refused.value).startswith(where)


# --- stored data: a fixed data set -----------------------------------------------------------


@pytest.fixture(params=["sqlite_url", pytest.param("postgres_url", marks=pytest.mark.slow)])
def db(request: pytest.FixtureRequest) -> str:
    """A migrated database with org acme: SQLite, and PostgreSQL."""
    url: str = request.getfixturevalue(request.param)
    upgrade(url)
    with session_scope(url) as session:
        ensure_org(session, "acme", "Acme")
    return url


def _meeting(session: Session, external: str) -> Meeting:
    meeting = Meeting(
        org_id="acme",
        external_id=external,
        title=external,
        payload={"attendees": []},
        transcript_hash="h",
    )
    session.add(meeting)
    session.flush()
    return meeting


def _extracted(session: Session, arm: str, version: int = 1, name: str = "items-v2") -> str:
    meeting = _meeting(session, f"{arm}-{session.scalar(select(func.count(Meeting.id)))}")
    session.add(
        InsightRecord(
            meeting_id=meeting.id,
            cache_key="k",
            insights={"action_items": [], "dropped_ungrounded": 1},
            arms=[{"experiment": name, "version": version, "task": "action_items", "arm": arm}],
            usage=[{"task": "action_items", "repair": False}]
            + ([{"task": "action_items", "repair": True}] if arm != "control" else []),
            cost_usd=0.001 if arm == "control" else 0.002,
            latency_ms=100 if arm == "control" else 300,
        )
    )
    return meeting.id


def _decided(session: Session, meeting_id: str, state: str, edits: tuple[Any, ...] = ()) -> None:
    session.add(
        ReviewRequest(org_id="acme", meeting_id=meeting_id, state=state, corrections=list(edits))
    )


def _rated(session: Session, meeting_id: str, value: str, who: str) -> None:
    session.add(Rating(org_id="acme", meeting_id=meeting_id, rated_by=who, value=value))


# control: 40 decisions, 30 approved as proposed; 25 ratings, 20 up
# v2:      40 decisions, 18 approved as proposed; 25 ratings, 10 up
FIXED = {
    "control": {"approved": 30, "edited": 5, "skipped": 5, "expired": 0, "up": 20, "down": 5},
    "v2": {"approved": 18, "edited": 10, "skipped": 8, "expired": 4, "up": 10, "down": 15},
}


def _fixed(session: Session) -> None:
    for arm, counts in FIXED.items():
        meetings = [_extracted(session, arm) for _ in range(20)]
        decisions = [
            s for s in ("approved", "edited", "skipped", "expired") for _ in range(counts[s])
        ]
        for i, state in enumerate(decisions):
            edit = [{"field": "title", "before": "Send deck", "after": "Send the deck"}]
            _decided(session, meetings[i % 20], state, edit if state == "edited" else [])
        votes = ["up"] * counts["up"] + ["down"] * counts["down"]
        for i, vote in enumerate(votes):
            _rated(session, meetings[i % 20], vote, f"u{i}")


def _wilson(x: int, n: int, z: float = NormalDist().inv_cdf(0.975)) -> tuple[float, float]:
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def _z_test(x1: int, n1: int, x2: int, n2: int) -> float:
    pooled = (x1 + x2) / (n1 + n2)
    z = (x1 / n1 - x2 / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return math.erfc(abs(z) / math.sqrt(2))


def test_the_reports_statistics_match_a_hand_computation(db: str) -> None:
    with session_scope(db) as session:
        experiments.create(session, spec(), LLM)
        _fixed(session)
    with session_scope(db) as session:
        report = build(session, "items-v2")
    control, v2 = report.arms
    assert (control.meetings, v2.meetings) == (20, 20)
    assert (v2.approval.successes, v2.approval.trials) == (18, 40)
    assert v2.approval.rate == pytest.approx(0.45)
    assert v2.approval.ci95 == pytest.approx(_wilson(18, 40), abs=1e-6)
    assert v2.edit_rate == pytest.approx(10 / 40) and v2.skip_rate == pytest.approx(8 / 40)
    assert v2.expire_rate == pytest.approx(4 / 40)
    # "Send deck" → "Send the deck": Indel similarity 2·9/(9+13) = 0.818…, so 0.1818 changed
    assert v2.mean_edit_change == pytest.approx(1 - 18 / 22, abs=1e-6)
    assert (v2.rating.successes, v2.rating.trials) == (10, 25)
    assert control.rating.ci95 == pytest.approx(_wilson(20, 25), abs=1e-6)
    rating, approval = v2.vs_control
    assert approval.p_value == pytest.approx(_z_test(18, 40, 30, 40), abs=1e-6)
    assert rating.p_value == pytest.approx(_z_test(10, 25, 20, 25), abs=1e-6)
    assert approval.significant and approval.diff == pytest.approx(-0.30)
    h = abs(2 * math.asin(math.sqrt(0.45)) - 2 * math.asin(math.sqrt(0.75)))
    # two groups: var(2·asin√p̂₁ − 2·asin√p̂₂) = 2/n (Cohen's table: h 0.2 → 392 per group)
    by_hand = 2 * ((NormalDist().inv_cdf(0.975) + NormalDist().inv_cdf(0.8)) / h) ** 2
    assert approval.needed_per_arm is not None
    assert abs(approval.needed_per_arm - math.ceil(by_hand)) <= 1
    assert v2.cost_usd["p50"] == pytest.approx(0.002) and control.latency_ms["p95"] == 100
    assert v2.grounding_drops_per_meeting == 1
    assert (control.schema_repairs_per_meeting, v2.schema_repairs_per_meeting) == (0, 1)


def test_ratings_and_review_outcomes_reach_the_arm_that_earned_them(db: str) -> None:
    with session_scope(db) as session:
        experiments.create(session, spec(), LLM)
        good = _extracted(session, "control")
        bad = _extracted(session, "v2")
        _rated(session, good, "up", "ann")
        _decided(session, good, "approved")
        _rated(session, bad, "down", "ann")
        _decided(session, bad, "skipped")
        _decided(session, bad, "expired")
    with session_scope(db) as session:
        control, v2 = build(session, "items-v2").arms
    assert (control.rating.successes, control.rating.trials, control.approval.successes) == (
        1,
        1,
        1,
    )
    assert (v2.rating.successes, v2.rating.trials, v2.approval.trials) == (0, 1, 2)
    assert (v2.skip_rate, v2.expire_rate) == (0.5, 0.5)


def test_a_guardrail_stops_a_bad_arm_and_says_why(db: str) -> None:
    with session_scope(db) as session:
        experiments.create(session, spec(guardrails={"min_samples": 20}), LLM)
        _fixed(session)
    with session_scope(db) as session:
        report = experiments.report(session, "items-v2")
    v2 = report.arms[1]
    assert v2.stopped is not None and v2.stopped.startswith("approval rate 0.450")
    assert "significantly below control's 0.750" in v2.stopped
    with session_scope(db) as session:
        meeting = _meeting(session, "after-the-stop")
        assert [a["arm"] for a in route(session, LLM, meeting).arms] == ["control"]


def test_an_arm_over_its_cost_bound_is_stopped(db: str) -> None:
    rails = {"min_samples": 1000, "max_cost_usd": 0.0015}
    with session_scope(db) as session:
        experiments.create(session, spec(guardrails=rails), LLM)
        _extracted(session, "control")
        _extracted(session, "v2")
    with session_scope(db) as session:
        stopped = experiments.report(session, "items-v2").arms[1].stopped
    assert stopped == "mean cost $0.002000 per meeting exceeds $0.0015"


def test_changing_arms_makes_a_new_version_and_old_ratings_stay_with_their_arm(db: str) -> None:
    with session_scope(db) as session:
        experiments.create(session, spec(), LLM)
        old = _extracted(session, "v2", version=1)
        _rated(session, old, "up", "ann")
        changed = spec()
        changed["arms"][1] = {
            "name": "gpt4o",
            "model": "gpt-4o",
            "prompt_version": "v1",
            "share": 0.5,
        }
        out = experiments.create(session, changed, LLM)
    assert out.version == 2
    with session_scope(db) as session:
        rows = session.scalars(select(models.Experiment).order_by(models.Experiment.version)).all()
        assert [r.state for r in rows] == ["superseded", "running"]
        report = build(session, "items-v2")
    assert [a.arm for a in report.arms] == ["control", "gpt4o"]
    assert report.arms[1].meetings == 0  # v2's rating is not the new arm's


def test_creation_refuses_a_bad_spec_with_the_located_error(db: str) -> None:
    with session_scope(db) as session, pytest.raises(Invalid, match=r"arms\[1\].model"):
        bad = spec()
        bad["arms"][1]["model"] = "gpt-99"
        experiments.create(session, bad, LLM)


def test_promote_and_rollback_change_what_new_meetings_get(db: str) -> None:
    with session_scope(db) as session:
        experiments.create(session, spec(), LLM)
        defaulted = experiments.promote(session, "items-v2", "v2")
        assert defaulted.version == 1 and defaulted.prompt_version == "v2"
        routed = route(session, LLM, _meeting(session, "new-1"))
        assert routed.llm.prompt_versions["action_items"] == "v2" and routed.arms == []
        back = experiments.rollback(session, "action_items", LLM)
        assert (back.version, back.prompt_version) == (2, "v1")
        routed = route(session, LLM, _meeting(session, "new-2"))
        assert routed.llm.prompt_versions["action_items"] == "v1"
        assert [d.comment for d in experiments.history(session, "action_items")] == [
            "promoted items-v2 v1 arm v2",
            "rollback to v0 (settings)",
        ]


def test_routing_reads_experiments_once_and_sees_another_process_s_change_within_the_ttl(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with session_scope(db) as session:
        experiments.create(session, spec(), LLM)
        first = route(session, LLM, _meeting(session, "cached-1")).arms
    with session_scope(db) as session:  # read again once the creation is committed
        route(session, LLM, _meeting(session, "cached-warm"))
    statements: list[str] = []
    engine = session_engine(db)
    listen = lambda *a: statements.append(a[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listen)
    try:
        with session_scope(db) as session:
            meeting = _meeting(session, "cached-2")
            statements.clear()
            assert [a["experiment"] for a in route(session, LLM, meeting).arms] == ["items-v2"]
        assert not [s for s in statements if "experiments" in s or "task_defaults" in s]
        # another process stops the experiment: no ORM event here, only the TTL brings it
        with engine.begin() as conn:
            conn.execute(text("UPDATE experiments SET state = 'stopped'"))
        monkeypatch.setattr(routing, "ROUTING_TTL_S", 0.0)
        with session_scope(db) as session:
            assert route(session, LLM, _meeting(session, "cached-3")).arms == []
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert first


# --- the pipeline on the sandbox ----------------------------------------------------------


def _table_counts(session: Session) -> dict[str, int]:
    return {
        table.name: session.scalar(select(func.count()).select_from(table)) or 0
        for table in models.Base.metadata.sorted_tables
    }


def test_the_extract_stage_records_the_arm_and_a_redelivery_keeps_it(
    sandbox: Sandbox, db: str
) -> None:
    runtime = Runtime(settings_for(sandbox, database_url=db))
    with session_scope(db) as session:
        experiments.create(session, spec(), runtime.settings.llm)
        stored = store_meeting(session, load_sample("sprint_planning"))
    assert stages.extract(runtime, stored.meeting_id).fresh is True
    assert stages.extract(runtime, stored.meeting_id).fresh is False  # same arm: the cache holds
    with session_scope(db) as session:
        record = session.scalars(select(InsightRecord)).one()
        meeting = session.get(Meeting, stored.meeting_id)
        assert meeting is not None
        expected = assign(parse_spec(spec(), LLM), f"meeting:acme:{meeting.external_id}")
    assert record.arms == [
        {"experiment": "items-v2", "version": 1, "task": "action_items", "arm": expected.name}
    ]
    assert record.prompt_versions["action_items"] == expected.prompt_version
    assert record.models["action_items"] == "gpt-4o-mini"
    assert record.cost_usd is not None and record.cost_usd > 0
    assert record.latency_ms is not None and record.usage


def test_shadow_arms_write_nothing_but_their_stored_output(sandbox: Sandbox, db: str) -> None:
    runtime = Runtime(settings_for(sandbox, database_url=db))
    shadowed = spec(
        arms=[
            {"name": "control", "model": "gpt-4o-mini", "prompt_version": "v1", "share": 1.0},
            {"name": "v2", "model": "gpt-4o-mini", "prompt_version": "v2", "shadow": True},
        ]
    )
    with session_scope(db) as session:
        experiments.create(session, shadowed, runtime.settings.llm)
        stored = store_meeting(session, load_sample("sprint_planning"))
    stages.extract(runtime, stored.meeting_id)
    with session_scope(db) as session:
        before = _table_counts(session)
        live = session.scalars(select(InsightRecord)).one().insights
    assert pipeline_experiments.run_shadows(runtime, stored.meeting_id) == 1
    assert pipeline_experiments.run_shadows(runtime, stored.meeting_id) == 0  # once a revision
    with session_scope(db) as session:
        after = _table_counts(session)
        shadow = session.scalars(select(ShadowExtraction)).one()
        assert session.scalars(select(InsightRecord)).one().insights == live
        diff = experiments.diff(session, "items-v2", stored.meeting_id)
        report = build(session, "items-v2")
    assert {k: after[k] - before[k] for k in after if after[k] != before[k]} == {
        "shadow_extractions": 1
    }
    assert shadow.error is None and shadow.prompt_version == "v2" and shadow.insights
    assert set(diff["shadows"]) == {"v2"} and diff["live"]
    assert report.arms[1].shadow and report.arms[1].meetings == 1


@pytest.mark.slow
def test_the_bench_finds_the_arm_with_the_higher_true_approval_rate() -> None:
    from bench.experiments import run

    result = run(control_rate=0.3, treatment_rate=0.8, seed=3, every=4, max_meetings=60)
    assert result["winner"] == result["true_winner"] == "treatment"
    assert result["meetings_needed"] is not None and result["predicted_sample_size"] > 0


def test_an_arms_parameters_change_the_cache_key_and_reach_the_model(sandbox: Sandbox) -> None:
    from extraction.cache import extraction_key
    from extraction.experiments.routing import with_arm
    from extraction.extract import extract_insights

    llm = settings_for(sandbox).llm
    low = with_arm(llm, "action_items", "gpt-4o-mini", "v1", {"reasoning_effort": "low"})
    assert extraction_key(llm, "h", {}) != extraction_key(low, "h", {})
    assert extraction_key(llm, "h", {}) == extraction_key(
        with_arm(llm, "action_items", "gpt-4o-mini", "v1", {}), "h", {}
    )  # an arm without parameters keeps the keys stored before arms had any
    result = extract_insights(load_sample("sprint_planning"), settings=low)
    assert result.insights.action_items and {u.task for u in result.usage} == {
        "action_items",
        "crm_fields",
    }


def test_an_arm_whose_extractions_fail_is_stopped_by_the_workers_guard(db: str) -> None:
    runtime = Runtime(settings_for_db(db))
    given = parse_spec(spec(guardrails={"min_samples": 3, "max_error_rate": 0.2}), LLM)
    with session_scope(db) as session:
        experiments.create(session, given.model_dump(mode="json"), LLM)
        failed = 0
        for i in range(40):
            meeting = _meeting(session, f"f{i}")
            if assign(given, f"meeting:acme:f{i}").name == "v2" and failed < 3:
                meeting.status, meeting.error = "failed", "LLMRefused: v2: refused"
                failed += 1
    assert pipeline_experiments.guard(runtime, every_s=0) == [
        "items-v2/v2: error rate 1.000 exceeds 0.2 (3 of 3 extractions failed)"
    ]
    with session_scope(db) as session:
        v2 = build(session, "items-v2").arms[1]
    assert (v2.errors, v2.refusals) == (3, 3)
    assert v2.stopped == "error rate 1.000 exceeds 0.2 (3 of 3 extractions failed)"


def settings_for_db(url: str) -> Any:
    from meetsync.settings import Settings

    return Settings(database_url=url)


def test_a_thumbs_up_from_the_slack_recap_reaches_the_meetings_arm(db: str) -> None:
    from admin.ratings import rate_recap
    from admin.review import Reviewer
    from meetsync.db.models import OpRecord

    with session_scope(db) as session:
        experiments.create(session, spec(), LLM)
        meeting_id = _extracted(session, "v2")
        session.add(
            OpRecord(
                key="recap-1",
                org_id="acme",
                meeting_id=meeting_id,
                connector="slack",
                connection="acme-slack",
                action="post_message",
                target={},
                fields={"action_items": [{"title": "Send the deck"}]},
                payload_hash="p",
            )
        )
    settings = settings_for_db(db)
    assert rate_recap(settings, "recap-1|0|up", Reviewer(slack_id="U1")).ok
    assert rate_recap(settings, "recap-1||down", Reviewer(slack_id="U2")).ok
    with session_scope(db) as session:
        control, v2 = build(session, "items-v2").arms
    assert (v2.rating.successes, v2.rating.trials, control.rating.trials) == (1, 2, 0)


def test_a_second_experiment_on_the_same_task_and_orgs_is_refused(db: str) -> None:
    with session_scope(db) as session:
        experiments.create(session, spec(orgs=["acme"]), LLM)
        experiments.create(session, spec(name="elsewhere", orgs=["globex"]), LLM)
        with pytest.raises(Invalid, match="experiment 'items-v2' already runs"):
            experiments.create(session, spec(name="rival"), LLM)
        experiments.stop(session, "items-v2")
        experiments.stop(session, "elsewhere")
        assert experiments.create(session, spec(name="rival"), LLM).version == 1


def test_review_requests_name_the_model_and_prompt_of_the_meetings_arm(
    sandbox: Sandbox, tmp_path: Any
) -> None:
    from bench.experiments import _mapping
    from meetsync.bootstrap import seed_demo

    settings = settings_for(sandbox, database_url=f"sqlite:///{tmp_path}/arm.db")
    upgrade(settings.database_url)
    only_v2 = spec(
        arms=[
            {"name": "control", "model": "gpt-4o-mini", "prompt_version": "v1", "share": 0.0},
            {"name": "v2", "model": "gpt-4o-mini", "prompt_version": "v2", "share": 1.0},
        ]
    )
    with session_scope(settings.database_url) as session:
        seed_demo(session, settings, _mapping(tmp_path))
        experiments.create(session, only_v2, settings.llm)
        stored = store_meeting(session, load_sample("sprint_planning"))
    runtime = Runtime(settings)
    stages.extract(runtime, stored.meeting_id)
    stages.plan(runtime, stored.meeting_id)
    with session_scope(settings.database_url) as session:
        held = session.scalars(select(ReviewRequest)).all()
    assert held and {(r.model, r.prompt_version) for r in held} == {("gpt-4o-mini", "v2")}
