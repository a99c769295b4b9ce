"""`meetsync eval`: score extraction on a labelled dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

import extraction
from extraction.experiments.spec import ExperimentSpec
from meetsync.settings import LLMSettings, get_settings

DEV_SET = Path(extraction.__file__).parent / "datasets" / "dev"
_Opt = typer.Option


def evaluate(
    dataset: Annotated[Path, _Opt(help="folder of labelled meetings")] = DEV_SET,
    model: Annotated[str | None, _Opt(help="one model for every task")] = None,
    json_file: Annotated[Path | None, _Opt("--json", help="write the report here")] = None,
    sandbox: Annotated[
        bool, _Opt(help="start the sandbox and use its rules model (no API key)")
    ] = False,
    similarity: Annotated[
        str, _Opt(help="token_set|token_sort|ratio|partial|wratio")
    ] = "token_set",
    threshold: Annotated[float, _Opt(help="title similarity 0-100 for a match")] = 70.0,
    judge_model: Annotated[str | None, _Opt(help="a model that judges matches")] = None,
    dump: Annotated[Path | None, _Opt(help="write every prediction and match here")] = None,
    compare: Annotated[list[str] | None, _Opt(help="MODEL, MODEL@PROMPT, @PROMPT; repeat")] = None,
    seed: Annotated[int, _Opt(help="bootstrap seed")] = 17,
    memory: Annotated[
        bool, _Opt(help="compare memory off and on (the dataset's memory.yaml)")
    ] = False,
    experiment: Annotated[
        str | None, _Opt(help="compare this experiment's arms, side by side with cost")
    ] = None,
) -> None:
    """Precision, recall and F1 with intervals, per meeting, by confidence; cost, latency."""
    if not dataset.is_dir():
        raise typer.BadParameter(f"{dataset} is not a folder of *.json examples")
    from extraction.dataset import validate_dataset
    from extraction.eval import EvalOptions, evaluate, reports_json
    from extraction.eval_render import tables
    from extraction.experiments.offline import evaluate_arms

    if problems := validate_dataset(dataset):
        raise typer.BadParameter("\n" + "\n".join(map(str, problems)), param_hint="--dataset")
    match = {"similarity": similarity, "threshold": threshold, "judge_model": judge_model}
    options = EvalOptions.model_validate({"match": match, "seed": seed, "dump_dir": dump})
    settings = get_settings().llm
    arms = _experiment(experiment) if experiment else None
    if sandbox:
        from sandbox.server import Sandbox

        with Sandbox(only=["openai"]) as running:
            at = _at(settings, running.urls["openai"])
            if arms is not None:
                compare, reports = evaluate_arms(dataset, arms, at, options)
            else:
                reports = evaluate(dataset, at, model, compare, options, memory)
    elif arms is not None:
        compare, reports = evaluate_arms(dataset, arms, settings, options)
    else:
        reports = evaluate(dataset, settings, model, compare, options, memory)
    Console().print(*tables(reports, compare))
    if json_file is not None:
        json_file.write_text(reports_json(reports))


def _experiment(name: str) -> ExperimentSpec:
    """The newest version of experiment `name`, from the database."""
    from extraction.experiments.report import current
    from meetsync.db.session import session_scope

    with session_scope(get_settings().database_url) as session:
        row = current(session, name)
        if row is None:
            raise typer.BadParameter(f"no experiment {name!r}", param_hint="--experiment")
        return ExperimentSpec.model_validate(row.spec)


def _at(settings: LLMSettings, base_url: str) -> LLMSettings:
    return settings.model_copy(update={"base_url": base_url})
