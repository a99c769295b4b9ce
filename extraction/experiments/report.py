"""Judging arms: what users said about each arm's output, with statistics, and the guardrails.

Per arm, from what is stored: the meetings it extracted (the newest `InsightRecord` of each
meeting names its arm), explicit ratings (👍/👎 on the recap and its items), review
outcomes (approved as proposed, edited and by how much, skipped, expired), extraction
errors and refusals (a failed meeting's arm is recomputed: assignment is a pure hash),
grounding drops, cost and latency. Ratings and decisions on a meeting count for the arm
of the experiment's task; the meeting's other task runs the same settings on every arm.

Test: statsmodels' two-proportion z-test (pooled variance, two-sided) of each arm's rate
against control; intervals are Wilson's. The minimum sample per arm to detect the observed
difference is statsmodels' `NormalIndPower` on Cohen's h at the experiment's alpha and 80 %
power. Guardrails use the same test one-sided (arm below control).
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
from pydantic import BaseModel
from rapidfuzz import fuzz
from sqlalchemy import String, cast, select
from sqlalchemy.orm import Session

from extraction.experiments.assign import assign, in_scope, unit_of
from extraction.experiments.spec import ExperimentSpec
from meetsync.db.models import (
    Experiment,
    InsightRecord,
    Meeting,
    Rating,
    ReviewRequest,
    ShadowExtraction,
)
from meetsync.states import MeetingStatus, Verdict

POWER = 0.8
TEST = "two-proportion z-test (statsmodels proportions_ztest, pooled, two-sided)"


class Comparison(BaseModel):
    """One rate of an arm against control's."""

    metric: str
    diff: float | None = None
    p_value: float | None = None
    significant: bool = False
    needed_per_arm: int | None = None


class Rate(BaseModel):
    successes: int
    trials: int
    rate: float | None
    ci95: tuple[float, float] | None


class ArmReport(BaseModel):
    """Everything one arm earned."""

    arm: str
    model: str
    prompt_version: str
    share: float
    shadow: bool
    versions: list[int]
    meetings: int
    rating: Rate
    approval: Rate
    edit_rate: float | None
    mean_edit_change: float | None
    skip_rate: float | None
    expire_rate: float | None
    errors: int
    refusals: int
    error_rate: float | None
    grounding_drops_per_meeting: float | None
    schema_repairs_per_meeting: float | None
    cost_usd: dict[str, float | None]
    latency_ms: dict[str, float | None]
    vs_control: list[Comparison]
    stopped: str | None = None


class ExperimentReport(BaseModel):
    name: str
    task: str
    version: int
    state: str
    control: str
    test: str
    alpha: float
    arms: list[ArmReport]


@dataclass
class _Tally:
    meetings: set[str] = field(default_factory=set)
    versions: set[int] = field(default_factory=set)
    up: int = 0
    down: int = 0
    approved: int = 0
    edited: int = 0
    skipped: int = 0
    expired: int = 0
    edit_changes: list[float] = field(default_factory=list)
    errors: int = 0
    refusals: int = 0
    drops: list[int] = field(default_factory=list)
    repairs: list[int] = field(default_factory=list)
    costs: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    @property
    def decided(self) -> int:
        return self.approved + self.edited + self.skipped + self.expired


def wilson(successes: int, trials: int) -> Rate:
    """A rate with its 95 % Wilson interval (None without trials)."""
    if trials == 0:
        return Rate(successes=0, trials=0, rate=None, ci95=None)
    from statsmodels.stats.proportion import proportion_confint  # ~1 s: not at CLI start

    low, high = proportion_confint(successes, trials, alpha=0.05, method="wilson")
    return Rate(
        successes=successes,
        trials=trials,
        rate=round(successes / trials, 6),
        ci95=(round(float(low), 6), round(float(high), 6)),
    )


def compare(metric: str, arm: Rate, control: Rate, alpha: float) -> Comparison:
    """The arm's rate against control's: difference, p-value, and the sample it needs."""
    if arm.rate is None or control.rate is None:
        return Comparison(metric=metric)
    diff = round(arm.rate - control.rate, 6)
    pooled = (arm.successes + control.successes) / (arm.trials + control.trials)
    p_value = None
    if 0 < pooled < 1:
        from statsmodels.stats.proportion import proportions_ztest

        _, p = proportions_ztest([arm.successes, control.successes], [arm.trials, control.trials])
        p_value = round(float(p), 6)
    return Comparison(
        metric=metric,
        diff=diff,
        p_value=p_value,
        significant=p_value is not None and p_value < alpha,
        needed_per_arm=sample_size(control.rate, arm.rate, alpha),
    )


def sample_size(p_control: float, p_arm: float, alpha: float, power: float = POWER) -> int | None:
    """Meetings (decisions) per arm to detect p_arm against p_control; None when equal."""
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    h = abs(float(proportion_effectsize(p_arm, p_control)))
    if h < 1e-9:
        return None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # a huge effect makes the solver's bracket overflow
        n = NormalIndPower().solve_power(effect_size=h, alpha=alpha, power=power, ratio=1.0)
    if not math.isfinite(float(n)):
        # the same normal approximation in closed form: 2·((z₁₋α/₂ + z_power) / h)²
        z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
        n = 2 * (z / h) ** 2
    return max(2, math.ceil(float(n)))


def below(arm: Rate, control: Rate) -> float | None:
    """One-sided p-value that the arm's rate is below control's."""
    if not arm.trials or not control.trials:
        return None
    pooled = (arm.successes + control.successes) / (arm.trials + control.trials)
    if not 0 < pooled < 1:
        return None
    from statsmodels.stats.proportion import proportions_ztest

    _, p = proportions_ztest(
        [arm.successes, control.successes], [arm.trials, control.trials], alternative="smaller"
    )
    return float(p)


def current(session: Session, name: str) -> Experiment | None:
    """The newest version of experiment `name`."""
    return session.scalars(
        select(Experiment).where(Experiment.name == name).order_by(Experiment.version.desc())
    ).first()


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "mean": None}
    data = np.asarray(values, dtype=float)
    return {
        "p50": round(float(np.percentile(data, 50)), 6),
        "p95": round(float(np.percentile(data, 95)), 6),
        "mean": round(float(data.mean()), 6),
    }


def _edit_change(corrections: Iterable[dict[str, Any]]) -> float:
    """How much an edit changed, 0 (nothing) to 1 (all of it), averaged over its fields."""
    changes = [
        1 - fuzz.ratio(str(c.get("before") or ""), str(c.get("after") or "")) / 100
        for c in corrections
    ]
    return sum(changes) / len(changes) if changes else 0.0


def _drops(insights: dict[str, Any]) -> int:
    values = insights.get("dropped_values") or {}
    return (
        int(insights.get("dropped_ungrounded") or 0)
        + int(insights.get("dropped_prompt_echo") or 0)
        + sum(int(v) for v in values.values())
    )


def _live_arms(session: Session, name: str) -> tuple[dict[str, str], dict[str, _Tally]]:
    """meeting → arm from each meeting's newest extraction, and tallies of those records."""
    newest: dict[str, tuple[int, str, int, InsightRecord]] = {}
    # only records that name the experiment: the arms' JSON text holds its quoted name
    named = cast(InsightRecord.arms, String).like(f'%"{name}"%')
    query = select(InsightRecord).where(named).order_by(InsightRecord.id)
    rows = session.scalars(query).yield_per(500)
    for record in rows:
        for entry in record.arms or []:
            if entry.get("experiment") == name:
                newest[record.meeting_id] = (record.id, entry["arm"], entry["version"], record)
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    arm_of: dict[str, str] = {}
    for meeting_id, (_, arm, version, record) in newest.items():
        arm_of[meeting_id] = arm
        tally = tallies[arm]
        tally.meetings.add(meeting_id)
        tally.versions.add(version)
        tally.drops.append(_drops(record.insights or {}))
        tally.repairs.append(_repairs(record.usage))
        if record.cost_usd is not None:
            tally.costs.append(record.cost_usd)
        if record.latency_ms is not None:
            tally.latencies.append(float(record.latency_ms))
    return arm_of, tallies


def _judgements(session: Session, arm_of: dict[str, str], tallies: dict[str, _Tally]) -> None:
    """Ratings and review outcomes of the arms' meetings, onto their arms."""
    ids = list(arm_of)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for rating in session.scalars(select(Rating).where(Rating.meeting_id.in_(chunk))):
            tally = tallies[arm_of[rating.meeting_id]]
            if rating.value == "up":
                tally.up += 1
            elif rating.value == "down":
                tally.down += 1
        requests = session.scalars(
            select(ReviewRequest).where(
                ReviewRequest.meeting_id.in_(chunk), ReviewRequest.kind == "change"
            )
        )
        for request in requests:
            tally = tallies[arm_of[request.meeting_id]]
            if request.state == Verdict.APPROVED:
                tally.approved += 1
            elif request.state == Verdict.EDITED:
                tally.edited += 1
                tally.edit_changes.append(_edit_change(request.corrections or []))
            elif request.state == Verdict.SKIPPED:
                tally.skipped += 1
            elif request.state == Verdict.EXPIRED:
                tally.expired += 1


def _failures(
    session: Session, row: Experiment, spec: ExperimentSpec, tallies: dict[str, _Tally]
) -> None:
    """Meetings whose extraction failed since the experiment began, onto the arm they hash to."""
    first = session.scalars(
        select(Experiment.created_at)
        .where(Experiment.name == row.name)
        .order_by(Experiment.version)
    ).first()
    query = select(Meeting).where(Meeting.status == MeetingStatus.FAILED)
    if first is not None:
        query = query.where(Meeting.updated_at >= first)
    for meeting in session.scalars(query):
        if not in_scope(spec, meeting.org_id) or meeting.error == "org has no mapping":
            continue
        unit = unit_of(spec, meeting.external_id, meeting.org_id, meeting.payload)
        # the arm its hash names: once that arm is stopped its meetings run control, and
        # their failures still count here; a stopped arm stays stopped, so this errs safe
        tally = tallies[assign(spec, unit).name]
        tally.errors += 1
        if "Refused" in (meeting.error or ""):
            tally.refusals += 1


def _shadow_tallies(session: Session, name: str) -> dict[str, _Tally]:
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    for shadow in session.scalars(
        select(ShadowExtraction).where(ShadowExtraction.experiment == name)
    ):
        tally = tallies[shadow.arm]
        tally.versions.add(shadow.experiment_version)
        if shadow.error:
            tally.errors += 1
            if "Refused" in shadow.error:
                tally.refusals += 1
            continue
        tally.meetings.add(shadow.meeting_id)
        tally.drops.append(_drops(shadow.insights or {}))
        tally.repairs.append(_repairs(shadow.usage))
        if shadow.cost_usd is not None:
            tally.costs.append(shadow.cost_usd)
        if shadow.latency_ms is not None:
            tally.latencies.append(float(shadow.latency_ms))
    return tallies


def _mean(values: list[int]) -> float | None:
    return round(sum(values) / len(values), 6) if values else None


def _repairs(usage: list[Any] | None) -> int:
    return sum(1 for call in usage or [] if isinstance(call, dict) and call.get("repair"))


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def build(session: Session, name: str) -> ExperimentReport:
    """The report of experiment `name` as stored now (KeyError when there is none)."""
    row = current(session, name)
    if row is None:
        raise KeyError(f"no experiment {name!r}")
    spec = ExperimentSpec.model_validate(row.spec)
    arm_of, tallies = _live_arms(session, name)
    _judgements(session, arm_of, tallies)
    _failures(session, row, spec, tallies)
    tallies.update(_shadow_tallies(session, name))
    alpha = spec.guardrails.alpha
    control = tallies[spec.control]
    control_rating = wilson(control.up, control.up + control.down)
    control_approval = wilson(control.approved, control.decided)
    arms = []
    for arm in spec.arms:
        tally = tallies[arm.name]
        rating = wilson(tally.up, tally.up + tally.down)
        approval = wilson(tally.approved, tally.decided)
        runs = len(tally.meetings) + tally.errors
        versus = []
        if arm.name != spec.control and not arm.shadow:
            versus = [
                compare("rating", rating, control_rating, alpha),
                compare("approval", approval, control_approval, alpha),
            ]
        arms.append(
            ArmReport(
                arm=arm.name,
                model=arm.model,
                prompt_version=arm.prompt_version,
                share=arm.share,
                shadow=arm.shadow,
                versions=sorted(tally.versions),
                meetings=len(tally.meetings),
                rating=rating,
                approval=approval,
                edit_rate=_ratio(tally.edited, tally.decided),
                mean_edit_change=(
                    round(sum(tally.edit_changes) / len(tally.edit_changes), 6)
                    if tally.edit_changes
                    else None
                ),
                skip_rate=_ratio(tally.skipped, tally.decided),
                expire_rate=_ratio(tally.expired, tally.decided),
                errors=tally.errors,
                refusals=tally.refusals,
                error_rate=_ratio(tally.errors, runs),
                grounding_drops_per_meeting=_mean(tally.drops),
                schema_repairs_per_meeting=_mean(tally.repairs),
                cost_usd=_percentiles(tally.costs),
                latency_ms=_percentiles(tally.latencies),
                vs_control=versus,
                stopped=row.stopped_arms.get(arm.name),
            )
        )
    return ExperimentReport(
        name=name,
        task=spec.task,
        version=row.version,
        state=row.state,
        control=spec.control,
        test=TEST,
        alpha=alpha,
        arms=arms,
    )


def breaches(report: ExperimentReport, spec: ExperimentSpec) -> dict[str, str]:
    """Arms a guardrail stops now, each with why (arms stopped already are left out)."""
    rails = spec.guardrails
    control = next(a for a in report.arms if a.arm == spec.control)
    stop: dict[str, str] = {}
    for arm in report.arms:
        if arm.arm == spec.control or arm.stopped:
            continue
        for metric, mine, theirs in (
            ("approval", arm.approval, control.approval),
            ("rating", arm.rating, control.rating),
        ):
            if arm.shadow or min(mine.trials, theirs.trials) < rails.min_samples:
                continue
            p = below(mine, theirs)
            if p is not None and p < rails.alpha:
                stop[arm.arm] = (
                    f"{metric} rate {mine.rate:.3f} is significantly below control's "
                    f"{theirs.rate:.3f} (one-sided z-test p={p:.4f} < {rails.alpha})"
                )
                break
        if arm.arm in stop:
            continue
        runs = arm.meetings + arm.errors
        rate = arm.error_rate
        if rate is not None and runs >= rails.min_samples and rate > rails.max_error_rate:
            stop[arm.arm] = (
                f"error rate {rate:.3f} exceeds {rails.max_error_rate} "
                f"({arm.errors} of {runs} extractions failed)"
            )
            continue
        mean_cost = arm.cost_usd.get("mean")
        bound = rails.max_cost_usd
        if bound is not None and mean_cost is not None and mean_cost > bound:
            stop[arm.arm] = f"mean cost ${mean_cost:.6f} per meeting exceeds ${bound}"
    return stop


def enforce(session: Session, name: str) -> ExperimentReport:
    """Build the report, stop every arm past a guardrail (recorded with why), return it."""
    report = build(session, name)
    row = current(session, name)
    assert row is not None
    if row.state != "running":
        return report
    spec = ExperimentSpec.model_validate(row.spec)
    stop = breaches(report, spec)
    if stop:
        row.stopped_arms = {**row.stopped_arms, **stop}
        for arm in report.arms:
            arm.stopped = row.stopped_arms.get(arm.arm)
    return report


def shadow_diff(session: Session, name: str, meeting_id: str) -> dict[str, Any]:
    """One meeting's live output beside each shadow arm's: items only one side has."""
    live = session.scalars(
        select(InsightRecord)
        .where(InsightRecord.meeting_id == meeting_id)
        .order_by(InsightRecord.id.desc())
    ).first()
    live_titles = _titles(live.insights if live else {})
    out: dict[str, Any] = {"meeting_id": meeting_id, "live": sorted(live_titles), "shadows": {}}
    for shadow in session.scalars(
        select(ShadowExtraction).where(
            ShadowExtraction.experiment == name, ShadowExtraction.meeting_id == meeting_id
        )
    ):
        theirs = _titles(shadow.insights or {})
        out["shadows"][shadow.arm] = {
            "error": shadow.error,
            "only_live": sorted(live_titles - theirs),
            "only_shadow": sorted(theirs - live_titles),
            "crm_changed": sorted(
                _crm_changed(live.insights if live else {}, shadow.insights or {})
            ),
        }
    return out


def _titles(insights: dict[str, Any]) -> set[str]:
    return {str(i.get("title")) for i in insights.get("action_items") or []}


def _crm_changed(live: dict[str, Any], shadow: dict[str, Any]) -> set[str]:
    a, b = live.get("crm") or {}, shadow.get("crm") or {}
    return {k for k in set(a) | set(b) if a.get(k) != b.get(k)}
