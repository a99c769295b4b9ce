"""The extract stage's one question: which settings does this meeting run under?

The newest task default (a promotion) overrides settings; then each running experiment in
the meeting's scope puts its assigned arm's model, prompt and parameters on its task. The
answer names every arm, so the stored extraction records what it ran under, and lists the
shadow arms to run beside it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, object_session

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


def newest_defaults(session: Session) -> list[TaskDefault]:
    """Each task's newest promoted default."""
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
    return list(rows)


def defaults(session: Session, llm: LLMSettings) -> LLMSettings:
    """Settings with each task's newest promoted default on top."""
    rows = newest_defaults(session)
    for row in sorted(rows, key=lambda r: r.task):
        llm = with_arm(llm, row.task, row.model, row.prompt_version, row.params)
    return llm


def running(session: Session) -> list[Experiment]:
    """The current version of every running experiment."""
    rows = session.scalars(
        select(Experiment).where(Experiment.state == "running").order_by(Experiment.name)
    ).all()
    return list(rows)


# What routing reads changes rarely (an experiment started, stopped or promoted) and is the
# same for every meeting: read once per process and database, again after `ROUTING_TTL_S`,
# or at once after this process writes an experiment or a task default. A change made
# by another process reaches new meetings within the TTL.
ROUTING_TTL_S = 1.0


@dataclass(frozen=True)
class _Running:
    name: str
    version: int
    spec: ExperimentSpec
    stopped_arms: dict[str, Any]


@dataclass(frozen=True)
class _Routing:
    defaults: list[tuple[str, str, str, dict[str, Any]]]  # task, model, prompt, params
    running: list[_Running]


_cache: dict[str, tuple[float, int, _Routing]] = {}
_generation = [0]  # bumped by every write of an experiment or task default in this process
_lock = threading.Lock()


def _changed() -> None:
    with _lock:
        _generation[0] += 1


def _written(_mapper: Any, _connection: Any, target: Any) -> None:
    _changed()
    session = object_session(target)
    if session is not None:  # again once the write is committed or rolled back
        session.info["routing_changed"] = True


for _model in (Experiment, TaskDefault):
    for _event in ("after_insert", "after_update", "after_delete"):
        event.listen(_model, _event, _written)


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _settled(session: Session) -> None:
    if session.info.pop("routing_changed", False):
        _changed()


def _pending(session: Session) -> bool:
    """This session holds unflushed experiment or task default changes of its own."""
    return any(
        isinstance(o, (Experiment, TaskDefault))
        for o in (*session.new, *session.dirty, *session.deleted)
    )


def _routing(session: Session) -> _Routing:
    """Task defaults and running experiments, as routing uses them (cached, see above)."""
    key = session.get_bind().engine.url.render_as_string(hide_password=False)
    now, generation = time.monotonic(), _generation[0]
    hit = _cache.get(key)
    fresh = hit is not None and hit[1] == generation and now - hit[0] < ROUTING_TTL_S
    if hit is not None and fresh and not _pending(session):
        return hit[2]
    rows = newest_defaults(session)
    found = _Routing(
        [(r.task, r.model, r.prompt_version, dict(r.params)) for r in rows],
        [
            _Running(r.name, r.version, ExperimentSpec.model_validate(r.spec), dict(r.stopped_arms))
            for r in running(session)
        ],
    )
    _cache[key] = (now, generation, found)
    return found


def route(session: Session, llm: LLMSettings, meeting: Meeting) -> Routed:
    """The settings `meeting` is extracted with, its arms, and the shadow arms to run."""
    routing = _routing(session)
    for task, model, prompt, params in sorted(routing.defaults, key=lambda d: d[0]):
        llm = with_arm(llm, task, model, prompt, params)
    arms: list[dict[str, Any]] = []
    pending: list[tuple[str, int, str, Arm]] = []
    taken: set[str] = set()
    for row in routing.running:
        spec = row.spec
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
