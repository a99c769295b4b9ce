"""`meetsync eval`: score extraction on a labelled dataset."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

import extraction
from meetsync.settings import LLMSettings, get_settings

if TYPE_CHECKING:  # extraction pulls in the openai SDK: load it only when eval runs
    from extraction.eval import EvalReport

DEV_SET = Path(extraction.__file__).parent / "datasets" / "dev"


def evaluate(
    dataset: Annotated[Path, typer.Option(help="folder of labelled meetings")] = DEV_SET,
    model: Annotated[str | None, typer.Option(help="one model for every task")] = None,
    json_file: Annotated[Path | None, typer.Option("--json", help="write the report here")] = None,
    sandbox: Annotated[
        bool, typer.Option(help="start the sandbox and use its rules model (no API key)")
    ] = False,
) -> None:
    """Precision, recall and F1 of action items, CRM accuracy, grounding, tokens and cost."""
    if not dataset.is_dir():
        raise typer.BadParameter(f"{dataset} is not a folder of *.json examples")
    from extraction.eval import run_eval

    settings = get_settings().llm
    if sandbox:
        from sandbox.server import Sandbox

        with Sandbox(only=["openai"]) as running:
            report = run_eval(dataset, _at(settings, running.urls["openai"]), model)
    else:
        report = run_eval(dataset, settings, model)
    Console().print(render(report))
    if json_file is not None:
        json_file.write_text(report.model_dump_json(indent=2))


def _at(settings: LLMSettings, base_url: str) -> LLMSettings:
    return settings.model_copy(update={"base_url": base_url})


def render(report: EvalReport) -> Table:
    """The report as one rich table."""
    table = Table("measure", "value", title=f"eval: {report.dataset} ({report.meetings} meetings)")
    models = ", ".join(f"{task}={model}" for task, model in report.models.items())
    rows: list[tuple[str, str]] = [
        ("models", models),
        ("action items precision", f"{report.precision:.3f}"),
        ("action items recall", f"{report.recall:.3f}"),
        ("action items F1", f"{report.f1:.3f}"),
        ("owner accuracy", _pct(report.owner_accuracy)),
        ("due date accuracy", _pct(report.due_date_accuracy)),
        ("grounding rate", f"{report.grounding_rate:.3f}"),
        ("tokens in / out", f"{report.input_tokens:,} / {report.output_tokens:,}"),
        ("cost", f"${report.cost_usd:.4f}"),
    ]
    rows += [
        (f"CRM {name} accuracy", f"{value:.3f}") for name, value in report.crm_accuracy.items()
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def _pct(value: float | None) -> str:
    return "n/a (unlabelled)" if value is None else f"{value:.3f}"
