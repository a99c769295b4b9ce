"""Eval reports as rich tables: the summary, per meeting, the confidence curve, comparisons."""

from __future__ import annotations

from rich.table import Table

from extraction.eval import EvalReport


def summary_table(report: EvalReport) -> Table:
    """The headline figures, with intervals and how items were matched."""
    table = Table("measure", "value", title=f"eval: {report.dataset} ({report.meetings} meetings)")
    models = ", ".join(f"{task}={model}" for task, model in report.models.items())
    prompts = ", ".join(f"{task}={v}" for task, v in report.prompt_versions.items())
    m = report.matching
    how = (
        f"judge {m.judge_model} (prompt {m.judge_prompt}), optimal assignment"
        if m.judge_model
        else f"{m.similarity} similarity ≥ {m.threshold:g}, optimal assignment"
    )
    rows: list[tuple[str, str]] = [
        ("models", models),
        ("prompts", prompts),
        ("matching", how),
        ("labelled meetings", f"{report.labelled_meetings} of {report.meetings}"),
        ("tp / fp / fn", f"{report.tp} / {report.fp} / {report.fn}"),
    ]
    ci = report.intervals
    if ci is not None:
        level = f"{ci.level:.0%} CI, {ci.resamples} resamples, seed {ci.seed}"
        rows += [
            (f"action items precision ({level})", str(ci.precision)),
            ("action items recall", str(ci.recall)),
            ("action items F1", str(ci.f1)),
        ]
    else:
        rows += [
            ("action items precision", f"{report.precision:.3f}"),
            ("action items recall", f"{report.recall:.3f}"),
            ("action items F1", f"{report.f1:.3f}"),
        ]
    rows += [
        ("owner accuracy", _pct(report.owner_accuracy)),
        ("due date accuracy", _pct(report.due_date_accuracy)),
        ("grounding rate", f"{report.grounding_rate:.3f}"),
        ("tokens in / out", f"{report.input_tokens:,} / {report.output_tokens:,}"),
        ("cost", f"${report.cost_usd:.4f}"),
        (
            "latency per meeting",
            f"{report.latency_s_mean:.3f}s mean, {report.latency_s_max:.3f}s max",
        ),
    ]
    rows += [
        (f"CRM {name} accuracy", f"{value:.3f}") for name, value in report.crm_accuracy.items()
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def meetings_table(report: EvalReport) -> Table:
    """Per-meeting counts and scores; unlabelled meetings show only what they cost."""
    table = Table(
        "meeting", "pred", "tp", "fp", "fn", "P", "R", "F1", "latency", title="per meeting"
    )
    for s in report.per_meeting:
        if not s.labelled:
            table.add_row(s.name, str(s.predicted), "-", "-", "-", "unlabelled", "", "",
                          f"{s.latency_s:.3f}s")  # fmt: skip
            continue
        table.add_row(
            s.name, str(s.predicted), str(s.items.tp), str(s.items.fp), str(s.items.fn),
            f"{s.precision:.2f}", f"{s.recall:.2f}", f"{s.f1:.2f}", f"{s.latency_s:.3f}s",
        )  # fmt: skip
    return table


def curve_table(report: EvalReport) -> Table:
    """Precision and recall if items under each confidence cut went to review instead."""
    table = Table("confidence ≥", "kept", "P", "R", "F1", title="precision/recall by confidence")
    for p in report.pr_curve:
        table.add_row(f"{p.threshold:.2f}", str(p.kept), f"{p.precision:.3f}",
                      f"{p.recall:.3f}", f"{p.f1:.3f}")  # fmt: skip
    return table


def comparison_table(variants: list[str], reports: list[EvalReport]) -> Table:
    """Variants side by side on the same set."""
    table = Table("measure", *variants, title=f"compare on {reports[0].dataset}")

    def row(name: str, values: list[str]) -> None:
        table.add_row(name, *values)

    row("precision", [str(r.intervals.precision) if r.intervals else "" for r in reports])
    row("recall", [str(r.intervals.recall) if r.intervals else "" for r in reports])
    row("F1", [str(r.intervals.f1) if r.intervals else "" for r in reports])
    row("owner accuracy", [_pct(r.owner_accuracy) for r in reports])
    row("due date accuracy", [_pct(r.due_date_accuracy) for r in reports])
    row("tokens in / out", [f"{r.input_tokens:,} / {r.output_tokens:,}" for r in reports])
    row("cost", [f"${r.cost_usd:.4f}" for r in reports])
    row("latency mean", [f"{r.latency_s_mean:.3f}s" for r in reports])
    return table


def memory_table(reports: list[EvalReport]) -> Table:
    """Memory off and on, side by side: what the org's memory fixes and what it costs."""
    table = Table("measure", "memory off", "memory on", title=f"memory on {reports[0].dataset}")
    rows = {
        "F1": [f"{r.f1:.3f}" for r in reports],
        "owner accuracy": [_pct(r.owner_accuracy) for r in reports],
        "term accuracy": [_pct(r.term_accuracy) for r in reports],
        "closures correct / gold / proposed": [
            f"{r.closures_correct} / {r.closures_gold} / {r.closures_predicted}" for r in reports
        ],
        "prompt tokens in": [f"{r.input_tokens:,}" for r in reports],
        "memory tokens (per prompt, summed)": [f"{r.memory_tokens:,}" for r in reports],
    }
    for name, values in rows.items():
        table.add_row(name, *values)
    return table


def _pct(value: float | None) -> str:
    return "n/a (unlabelled)" if value is None else f"{value:.3f}"


def tables(reports: list[EvalReport], variants: list[str] | None = None) -> list[Table]:
    """What `meetsync eval` prints: a comparison, or one report in three tables."""
    if len(reports) == 2 and [r.memory for r in reports] == [False, True]:
        return [memory_table(reports)]
    if variants:
        return [comparison_table(variants, reports)]
    return [summary_table(reports[0]), meetings_table(reports[0]), curve_table(reports[0])]
