"""The extract stage's one question: which settings does this meeting run under?

The newest task default (a promotion) overrides settings; then each running experiment in
the meeting's scope puts its assigned arm's model, prompt and parameters on its task. The
answer names every arm, so the stored extraction records what it ran under, and lists the
shadow arms to run beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from extraction.experiments.assign import assign, in_scope, unit_of
from extraction.experiments.spec import Arm, ExperimentSpec
from meetsync.db.models import Experiment, Meeting, TaskDefault
from meetsync.settings import LLMSettings


@dataclass(frozen=True)
class Shadow:
    """A shadow arm to run on this meeting: the experiment, its version, the arm's settings."""

    experiment: str
    version: int
    arm: Arm
    llm: LLMSettings


@dataclass(frozen=True)
class Routed:
    """The effective settings of one meeting's extraction and the arms behind them."""

    llm: LLMSettings
    arms: list[dict[str, Any]] = field(default_factory=list)
    shadows: list[Shadow] = field(default_factory=list)


def with_arm(
    llm: LLMSettings, task: str, model: str, prompt: str, params: dict[str, Any]
) -> LLMSettings:
    """`llm` with `task` run by `model` on prompt `prompt` with `params`."""
    update: dict[str, Any] = {
        "models": {**llm.models, task: model},
        "prompt_versions": {**llm.prompt_versions, task: prompt},
    }
    if params or task in llm.params:
        update["params"] = {**llm.params, task: dict(params)}
    return llm.model_copy(update=update)


def defaults(session: Session, llm: LLMSettings) -> LLMSettings:
    """Settings with each task's newest promoted default on top."""
    newest = (
        select(TaskDefault.task, func.max(TaskDefault.version).label("version"))
        .group_by(TaskDefault.task)
        .subquery()
    )
    rows = session.scalars(
        select(TaskDefault).join(
            newest,
            (TaskDefault.task == newest.c.task) & (TaskDefault.version == newest.c.version),
        )
    ).all()
    for row in sorted(rows, key=lambda r: r.task):
        llm = with_arm(llm, row.task, row.model, row.prompt_version, row.params)
    return llm


def running(session: Session) -> list[Experiment]:
    """The current version of every running experiment."""
    rows = session.scalars(
        select(Experiment).where(Experiment.state == "running").order_by(Experiment.name)
    ).all()
    return list(rows)


def route(session: Session, llm: LLMSettings, meeting: Meeting) -> Routed:
    """The settings `meeting` is extracted with, its arms, and the shadow arms to run."""
    llm = defaults(session, llm)
    arms: list[dict[str, Any]] = []
    pending: list[tuple[str, int, str, Arm]] = []
    taken: set[str] = set()
    for row in running(session):
        spec = ExperimentSpec.model_validate(row.spec)
        if spec.task in taken or not in_scope(spec, meeting.org_id):
            continue  # one experiment per task at a time: the first by name wins
        taken.add(spec.task)
        unit = unit_of(spec, meeting.external_id, meeting.org_id, meeting.payload)
        arm = assign(spec, unit, row.stopped_arms)
        llm = with_arm(llm, spec.task, arm.model, arm.prompt_version, arm.params)
        arms.append(
            {"experiment": spec.name, "version": row.version, "task": spec.task, "arm": arm.name}
        )
        for shadow in spec.shadows:
            if shadow.name in row.stopped_arms:
                continue
            pending.append((spec.name, row.version, spec.task, shadow))
    # a shadow differs from the live extraction in its own task only
    shadows = [
        Shadow(name, version, arm, with_arm(llm, task, arm.model, arm.prompt_version, arm.params))
        for name, version, task, arm in pending
    ]
    return Routed(llm, arms, shadows)
