"""An experiment as data: a task, arms with traffic shares, who is sticky, which orgs, guardrails.

Mistakes raise `InvalidExperiment` naming the path in the spec (`arms[1].prompt_version`)
and the fix, before anything is stored.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from extraction.extract import TASKS
from extraction.prompting import PROMPTS_DIR
from meetsync.settings import LLMSettings
from meetsync.tokens import CONTEXT_WINDOWS

PARAMS = {"reasoning_effort", "temperature", "top_p", "verbosity"}


class InvalidExperiment(ValueError):
    """An experiment spec refused at creation: where in the spec, what is wrong, the fix."""

    def __init__(self, path: str, message: str, fix: str | None = None) -> None:
        super().__init__(f"{path}: {message}" + (f" ({fix})" if fix else ""))
        self.path, self.message, self.fix = path, message, fix


class Arm(BaseModel):
    """One way to run the task: a model, a prompt version, parameters, a share of traffic.

    A shadow arm takes no traffic: it runs beside the live arm and only its output is stored.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    model: str
    prompt_version: str
    params: dict[str, Any] = Field(default_factory=dict)
    share: float = Field(default=0.0, ge=0.0, le=1.0)
    shadow: bool = False


class Guardrails(BaseModel):
    """When an arm is stopped on its own: worse than control, or past a bound."""

    model_config = ConfigDict(extra="forbid")

    alpha: float = Field(default=0.05, gt=0, lt=0.5, description="one-sided significance")
    min_samples: int = Field(default=30, ge=1, description="per arm before a rate can stop it")
    max_error_rate: float = Field(default=0.2, ge=0, le=1)
    max_cost_usd: float | None = Field(default=None, description="mean cost per meeting")


class ExperimentSpec(BaseModel):
    """What `meetsync experiments create` reads (YAML or JSON)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    task: str
    control: str = Field(description="the arm the others are judged against")
    arms: list[Arm] = Field(min_length=2)
    sticky: Literal["meeting", "org", "user"] = "meeting"
    orgs: list[str] | None = Field(default=None, description="only these orgs; None: all")
    guardrails: Guardrails = Field(default_factory=Guardrails)

    def arm(self, name: str) -> Arm:
        """The arm called `name`; KeyError naming the known ones otherwise."""
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KeyError(f"no arm {name!r}; arms: {', '.join(a.name for a in self.arms)}")

    @property
    def live(self) -> list[Arm]:
        return [a for a in self.arms if not a.shadow]

    @property
    def shadows(self) -> list[Arm]:
        return [a for a in self.arms if a.shadow]


def known_models(llm: LLMSettings) -> set[str]:
    """Models meetsync knows a price or a context window for, or already routes to."""
    return (
        set(llm.prices) | set(llm.context_windows) | set(CONTEXT_WINDOWS) | set(llm.models.values())
    )


def prompt_versions(task: str) -> list[str]:
    return sorted(p.stem for p in (PROMPTS_DIR / task).glob("*.md"))


def parse_spec(data: dict[str, Any], llm: LLMSettings) -> ExperimentSpec:
    """A validated spec, or `InvalidExperiment` located at the first mistake."""
    try:
        spec = ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
        raise InvalidExperiment(path.lstrip(".") or "spec", error["msg"]) from None
    if spec.task not in TASKS:
        raise InvalidExperiment("task", f"unknown task {spec.task!r}", f"one of {', '.join(TASKS)}")
    names = [a.name for a in spec.arms]
    for i, arm in enumerate(spec.arms):
        if names.index(arm.name) != i:
            raise InvalidExperiment(f"arms[{i}].name", f"arm {arm.name!r} appears twice")
        if arm.model not in known_models(llm):
            raise InvalidExperiment(
                f"arms[{i}].model",
                f"unknown model {arm.model!r}",
                "add its price to llm.prices or its window to llm.context_windows",
            )
        versions = prompt_versions(spec.task)
        if arm.prompt_version not in versions:
            raise InvalidExperiment(
                f"arms[{i}].prompt_version",
                f"no prompt {spec.task}/{arm.prompt_version}.md",
                f"known: {', '.join(versions)}",
            )
        if unknown := set(arm.params) - PARAMS:
            raise InvalidExperiment(
                f"arms[{i}].params", f"unknown {sorted(unknown)}", f"known: {sorted(PARAMS)}"
            )
        if arm.shadow and arm.share:
            raise InvalidExperiment(f"arms[{i}].share", "a shadow arm takes no traffic", "0")
    if spec.control not in names:
        raise InvalidExperiment("control", f"no arm {spec.control!r}", f"one of {names}")
    if spec.arm(spec.control).shadow:
        raise InvalidExperiment("control", "the control arm cannot be a shadow")
    total = sum(a.share for a in spec.live)
    if not math.isclose(total, 1.0, abs_tol=1e-9):
        shares = " + ".join(f"{a.name} {a.share:g}" for a in spec.live)
        raise InvalidExperiment("arms", f"live shares add up to {total:g}, not 1: {shares}")
    return spec
