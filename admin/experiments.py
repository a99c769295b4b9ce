"""What operators do with experiments: create, change (a new version), stop, judge, promote.

Promotion writes the arm's model, prompt and parameters as the task's next default
(`TaskDefault`, versioned like mappings); `rollback` adds a version copying an earlier one,
or the settings' own when there is none. New meetings pick the newest default up at once;
stored extractions keep the arm they ran under.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from admin.errors import Invalid, NotFound
from extraction.experiments import ExperimentSpec, InvalidExperiment, parse_spec
from extraction.experiments.report import ExperimentReport, current, enforce, shadow_diff
from meetsync.db.models import Experiment, TaskDefault
from meetsync.settings import LLMSettings

__all__ = [
    "Defaulted",
    "ExperimentOut",
    "ExperimentReport",
    "create",
    "diff",
    "history",
    "listing",
    "promote",
    "report",
    "rollback",
    "stop",
]


class ExperimentOut(BaseModel):
    name: str
    version: int
    task: str
    state: str
    spec: dict[str, Any]
    stopped_arms: dict[str, str]


class Defaulted(BaseModel):
    """A task's default after a promotion or a rollback."""

    task: str
    version: int
    model: str
    prompt_version: str
    params: dict[str, Any]
    comment: str | None


def _out(row: Experiment) -> ExperimentOut:
    return ExperimentOut(
        name=row.name,
        version=row.version,
        task=row.task,
        state=row.state,
        spec=row.spec,
        stopped_arms=row.stopped_arms,
    )


def create(
    session: Session, data: dict[str, Any], llm: LLMSettings, who: str = "cli"
) -> ExperimentOut:
    """Start an experiment, or its next version when the name exists; refused if invalid.

    A new version keeps the arms' assignment (the hash is of the name, not the version) and
    the stops of arms it did not change; ratings already earned stay with the old version.
    """
    try:
        spec = parse_spec(data, llm)
    except InvalidExperiment as exc:
        raise Invalid(str(exc)) from exc
    previous = current(session, spec.name)
    for other in session.scalars(
        select(Experiment).where(
            Experiment.state == "running",
            Experiment.task == spec.task,
            Experiment.name != spec.name,
        )
    ):
        theirs = other.spec.get("orgs")
        if spec.orgs is None or theirs is None or set(spec.orgs) & set(theirs):
            raise Invalid(
                f"task: experiment {other.name!r} already runs on {spec.task!r} for these "
                "orgs; stop or promote it first (one experiment per task and org)"
            )
    version, stopped = 1, {}
    if previous is not None:
        if previous.task != spec.task:
            raise Invalid(f"task: experiment {spec.name!r} is on {previous.task!r}; use a new name")
        old = ExperimentSpec.model_validate(previous.spec)
        kept = {a.name: a for a in old.arms}
        stopped = {
            arm: why
            for arm, why in previous.stopped_arms.items()
            if arm in kept and _same(kept[arm], spec, arm)
        }
        version = previous.version + 1
        if previous.state == "running":
            previous.state = "superseded"
    row = Experiment(
        name=spec.name,
        version=version,
        task=spec.task,
        spec=spec.model_dump(mode="json"),
        state="running",
        stopped_arms=stopped,
        created_by=who,
    )
    session.add(row)
    session.flush()
    return _out(row)


def _same(old: Any, spec: ExperimentSpec, name: str) -> bool:
    try:
        new = spec.arm(name)
    except KeyError:
        return False
    keys = ("model", "prompt_version", "params", "shadow")
    return all(getattr(old, k) == getattr(new, k) for k in keys)


def _running(session: Session, name: str) -> Experiment:
    row = current(session, name)
    if row is None:
        raise NotFound(f"no experiment {name!r}")
    return row


def listing(session: Session) -> list[ExperimentOut]:
    """The newest version of every experiment."""
    rows = session.scalars(select(Experiment).order_by(Experiment.name, Experiment.version))
    newest = {row.name: row for row in rows}
    return [_out(row) for row in newest.values()]


def stop(session: Session, name: str) -> ExperimentOut:
    """End an experiment without promoting: new meetings get the task's default again."""
    row = _running(session, name)
    row.state = "stopped"
    return _out(row)


def report(session: Session, name: str) -> ExperimentReport:
    """The experiment's report; guardrails stop any arm past them on the way."""
    _running(session, name)
    return enforce(session, name)


def diff(session: Session, name: str, meeting_id: str) -> dict[str, Any]:
    """One meeting's live output beside its shadow arms'."""
    _running(session, name)
    return shadow_diff(session, name, meeting_id)


def promote(session: Session, name: str, arm_name: str, who: str = "cli") -> Defaulted:
    """Make `arm_name` its task's default (a new `TaskDefault` version); the experiment ends."""
    row = _running(session, name)
    spec = ExperimentSpec.model_validate(row.spec)
    try:
        arm = spec.arm(arm_name)
    except KeyError as exc:
        raise NotFound(str(exc.args[0])) from exc
    if arm_name in row.stopped_arms:
        raise Invalid(f"arm {arm_name!r} was stopped: {row.stopped_arms[arm_name]}")
    row.state = "promoted"
    comment = f"promoted {name} v{row.version} arm {arm_name}"
    return _write_default(
        session, spec.task, arm.model, arm.prompt_version, arm.params, comment, who
    )


def rollback(
    session: Session, task: str, llm: LLMSettings, to: int | None = None, who: str = "cli"
) -> Defaulted:
    """The task's default back to version `to` (default: the one before the newest)."""
    rows = history(session, task)
    if not rows:
        raise NotFound(f"task {task!r} has no promoted default to roll back")
    newest = rows[-1].version
    target = to if to is not None else newest - 1
    if target == 0:  # before any promotion: what settings say
        model, prompt, params = llm.models[task], llm.prompt_versions[task], {}
    else:
        found = [r for r in rows if r.version == target]
        if not found:
            raise NotFound(f"task {task!r} has no default version {target}")
        model, prompt, params = found[0].model, found[0].prompt_version, found[0].params
    comment = f"rollback to v{target}" + (" (settings)" if target == 0 else "")
    return _write_default(session, task, model, prompt, params, comment, who)


def history(session: Session, task: str) -> list[Defaulted]:
    """Every default version of `task`, oldest first."""
    rows = session.scalars(
        select(TaskDefault).where(TaskDefault.task == task).order_by(TaskDefault.version)
    )
    return [_defaulted(r) for r in rows]


def _write_default(
    session: Session,
    task: str,
    model: str,
    prompt: str,
    params: dict[str, Any],
    comment: str,
    who: str,
) -> Defaulted:
    newest = session.scalars(
        select(TaskDefault.version)
        .where(TaskDefault.task == task)
        .order_by(TaskDefault.version.desc())
    ).first()
    row = TaskDefault(
        task=task,
        version=(newest or 0) + 1,
        model=model,
        prompt_version=prompt,
        params=dict(params),
        comment=comment,
        created_by=who,
    )
    session.add(row)
    session.flush()
    return _defaulted(row)


def _defaulted(row: TaskDefault) -> Defaulted:
    return Defaulted(
        task=row.task,
        version=row.version,
        model=row.model,
        prompt_version=row.prompt_version,
        params=row.params,
        comment=row.comment,
    )
