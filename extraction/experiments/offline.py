"""An experiment's arms on a labelled set: the same meetings and matcher for every arm.

What `meetsync eval --experiment NAME` runs, shadow arms included: each arm's settings are
the live settings with the experiment's task switched to the arm's model, prompt and
parameters, exactly as the extract stage would run it.
"""

from __future__ import annotations

from pathlib import Path

from extraction.eval import EvalOptions, EvalReport, run_eval
from extraction.experiments.routing import with_arm
from extraction.experiments.spec import ExperimentSpec
from meetsync.settings import LLMSettings


def arm_settings(spec: ExperimentSpec, llm: LLMSettings) -> list[tuple[str, LLMSettings]]:
    """(label, settings) per arm; the label reads `arm (model@prompt)`."""
    return [
        (
            f"{arm.name} ({arm.model}@{arm.prompt_version})",
            with_arm(llm, spec.task, arm.model, arm.prompt_version, arm.params),
        )
        for arm in spec.arms
    ]


def evaluate_arms(
    dataset_dir: Path, spec: ExperimentSpec, llm: LLMSettings, options: EvalOptions | None = None
) -> tuple[list[str], list[EvalReport]]:
    """Labels and one report per arm, in the spec's order."""
    labels, reports = [], []
    for label, settings in arm_settings(spec, llm):
        run_options = options
        if options is not None and options.dump_dir is not None:
            dump = options.dump_dir / label.split(" ")[0]
            run_options = options.model_copy(update={"dump_dir": dump})
        labels.append(label)
        reports.append(run_eval(dataset_dir, settings, client=None, options=run_options))
    return labels, reports
