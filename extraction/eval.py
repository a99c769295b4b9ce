"""Offline evaluation: run extraction over a labelled dataset and score it.

Action items are matched one-to-one to gold items by an optimal assignment over title
similarity (`extraction.matching`; or a judge model, `extraction.judge`), then owner and
due date are checked where the gold labels them. CRM fields are scored per labelled field.
Precision, recall and F1 carry seeded bootstrap intervals over meetings
(`extraction.bootstrap`), and a precision/recall curve over the confidence threshold shows
what a reviewer would see below each cut. The dataset format is described in
extraction/datasets/README.md and validated before any model is called.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import openai
from pydantic import BaseModel, Field
from rapidfuzz import fuzz

from extraction.bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED, PRF, Intervals, bootstrap, total
from extraction.dataset import Example, GoldItem, load_dataset, load_memory
from extraction.extract import extract_insights
from extraction.judge import DEFAULT_PROMPT as JUDGE_PROMPT
from extraction.judge import Judge
from extraction.llm import CallUsage, cost, make_client
from extraction.matching import MatchSettings, assign, similarity_matrix
from extraction.memory.scratch import scratch_memory
from extraction.said import says
from extraction.schemas import ActionItem, CrmFields, Insights
from meetsync.settings import LLMSettings

__all__ = [
    "PRF", "EvalOptions", "EvalReport", "Example", "GoldItem", "MatchSettings", "MeetingScore",
    "compare", "compare_memory", "cost", "evaluate", "load_dataset", "match_items",
    "reports_json", "run_eval", "score_meeting",
]  # fmt: skip

TEXT_MATCH = 70.0


class EvalOptions(BaseModel):
    """How a run is scored and what it leaves behind."""

    match: MatchSettings = Field(default_factory=MatchSettings)
    resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED
    dump_dir: Path | None = None
    memory: bool = Field(default=False, description="recall the dataset's memory.yaml per meeting")
    memory_budget_tokens: int = 600


class Pair(BaseModel):
    """One prediction and what it matched."""

    predicted: int
    gold: int | None
    similarity: float | None


class MeetingScore(BaseModel):
    name: str
    labelled: bool = True
    items: PRF
    owner_hits: int = 0
    owner_labelled: int = 0
    due_hits: int = 0
    due_labelled: int = 0
    term_hits: int = 0
    term_labelled: int = 0
    closures_correct: int = 0
    closures_gold: int = 0
    closures_predicted: int = 0
    memory_tokens: int = 0
    crm: dict[str, bool] = Field(default_factory=dict)
    missed: list[str] = Field(default_factory=list)
    extra: list[str] = Field(default_factory=list)
    predicted: int = 0
    latency_s: float = 0.0
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None


class CurvePoint(BaseModel):
    """Scores when only predictions at or above `threshold` confidence are kept."""

    threshold: float
    kept: int
    precision: float
    recall: float
    f1: float


class EvalReport(BaseModel):
    """Scores over a dataset, plus what the run cost."""

    dataset: str
    models: dict[str, str]
    prompt_versions: dict[str, str] = Field(default_factory=dict)
    matching: MatchSettings = Field(default_factory=MatchSettings)
    meetings: int
    labelled_meetings: int = 0
    precision: float
    recall: float
    f1: float
    intervals: Intervals | None = None
    tp: int = 0
    fp: int = 0
    fn: int = 0
    owner_accuracy: float | None
    due_date_accuracy: float | None
    memory: bool = Field(default=False, description="whether the dataset's memory was recalled")
    term_accuracy: float | None = Field(
        default=None, description="labelled terms the matched titles spell the org's way"
    )
    closures_correct: int = 0
    closures_gold: int = 0
    closures_predicted: int = 0
    memory_tokens: int = Field(default=0, description="prompt tokens memory added, per prompt")
    crm_accuracy: dict[str, float]
    grounding_rate: float
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_s_mean: float = 0.0
    latency_s_max: float = 0.0
    pr_curve: list[CurvePoint] = Field(default_factory=list)
    per_meeting: list[MeetingScore]


def run_eval(
    dataset_dir: Path,
    settings: LLMSettings,
    model: str | None = None,
    *,
    client: openai.OpenAI | None = None,
    org_profile: dict[str, Any] | None = None,
    options: EvalOptions | None = None,
) -> EvalReport:
    """Extract every example with `settings` (or `model` for every task) and score it."""
    options = options or EvalOptions()
    examples = load_dataset(dataset_dir)  # InvalidDataset before any call
    if model is not None:
        settings = settings.model_copy(update={"models": dict.fromkeys(settings.models, model)})
    own_client = client is None
    client = client or make_client(settings)  # one client for the whole run
    judge = (
        Judge(client, options.match.judge_model, options.match.judge_prompt or JUDGE_PROMPT)
        if options.match.judge_model
        else None
    )
    matching = options.match.model_copy(
        update={"judge_prompt": (options.match.judge_prompt or JUDGE_PROMPT) if judge else None}
    )
    scores: list[MeetingScore] = []
    usage: list[CallUsage] = []
    grounded = dropped = 0
    crm_totals: dict[str, list[bool]] = {}
    scored: list[tuple[Example, list[ActionItem]]] = []
    stack = ExitStack()
    recalled = None
    if options.memory:
        document = load_memory(dataset_dir)
        if document is None:
            raise ValueError(f"{dataset_dir} has no memory.yaml to recall")
        orgs = {e.meeting.org_id for e in examples}
        recalled = stack.enter_context(scratch_memory(document, orgs))
    for example in stack_examples(stack, examples):
        profile, memory_tokens = org_profile, 0
        if recalled is not None:
            profile, memory_tokens = recalled(
                example.meeting, org_profile, options.memory_budget_tokens
            )
        began = time.perf_counter()
        result = extract_insights(
            example.meeting, settings=settings, org_profile=profile, client=client
        )
        latency = time.perf_counter() - began
        usage += result.usage
        insights = result.insights
        grounded += len(insights.action_items) + _facts(insights.crm)
        dropped += insights.dropped_ungrounded
        score, pairs = _score(example, insights, matching, judge)
        score.latency_s = round(latency, 4)
        score.memory_tokens = memory_tokens
        for field, ok in score.crm.items():
            crm_totals.setdefault(field, []).append(ok)
        scores.append(score)
        if example.items_labelled:
            scored.append((example, insights.action_items))
        if options.dump_dir is not None:
            _dump(options.dump_dir, example, insights, pairs, score)
    curve = pr_curve(scored, matching, judge)
    if own_client:
        client.close()
    counts = [s.items for s in scores if s.labelled]
    overall = total(counts)
    owner_labelled = sum(s.owner_labelled for s in scores)
    due_labelled = sum(s.due_labelled for s in scores)
    term_labelled = sum(s.term_labelled for s in scores)
    latencies = [s.latency_s for s in scores] or [0.0]
    report = EvalReport(
        dataset=str(dataset_dir),
        models=dict(settings.models),
        prompt_versions=dict(settings.prompt_versions),
        matching=matching,
        meetings=len(scores),
        labelled_meetings=len(counts),
        precision=round(overall.precision, 4),
        recall=round(overall.recall, 4),
        f1=round(overall.f1, 4),
        intervals=bootstrap(counts, resamples=options.resamples, seed=options.seed),
        tp=overall.tp,
        fp=overall.fp,
        fn=overall.fn,
        owner_accuracy=(
            round(sum(s.owner_hits for s in scores) / owner_labelled, 4) if owner_labelled else None
        ),
        due_date_accuracy=(
            round(sum(s.due_hits for s in scores) / due_labelled, 4) if due_labelled else None
        ),
        memory=options.memory,
        term_accuracy=(
            round(sum(s.term_hits for s in scores) / term_labelled, 4) if term_labelled else None
        ),
        closures_correct=sum(s.closures_correct for s in scores),
        closures_gold=sum(s.closures_gold for s in scores),
        closures_predicted=sum(s.closures_predicted for s in scores),
        memory_tokens=sum(s.memory_tokens for s in scores),
        crm_accuracy={k: round(sum(v) / len(v), 4) for k, v in sorted(crm_totals.items())},
        grounding_rate=round(grounded / (grounded + dropped), 4) if grounded + dropped else 1.0,
        input_tokens=sum(u.input_tokens for u in usage),
        output_tokens=sum(u.output_tokens for u in usage),
        cost_usd=round(cost(usage, settings.prices), 6),
        latency_s_mean=round(sum(latencies) / len(latencies), 4),
        latency_s_max=round(max(latencies), 4),
        pr_curve=curve,
        per_meeting=scores,
    )
    if options.dump_dir is not None:
        (options.dump_dir / "report.json").write_text(report.model_dump_json(indent=2))
    return report


def compare(
    dataset_dir: Path,
    settings: LLMSettings,
    variants: list[str],
    *,
    client: openai.OpenAI | None = None,
    options: EvalOptions | None = None,
) -> list[EvalReport]:
    """One report per variant on the same set: `MODEL`, `MODEL@PROMPT` or `@PROMPT`.

    The prompt version applies to the action-items task; the model to every task.
    """
    reports = []
    for variant in variants:
        model, _, version = variant.partition("@")
        varied = settings
        if version:
            versions = {**settings.prompt_versions, "action_items": version}
            varied = settings.model_copy(update={"prompt_versions": versions})
        run_options = options
        if options is not None and options.dump_dir is not None:
            dump = options.dump_dir / variant.replace("/", "_").replace("@", "_at_")
            run_options = options.model_copy(update={"dump_dir": dump})
        reports.append(
            run_eval(dataset_dir, varied, model or None, client=client, options=run_options)
        )
    return reports


def _facts(crm: CrmFields | None) -> int:
    if crm is None:
        return 0
    return sum(getattr(crm, name) is not None for name in CrmFields.model_fields)


def match_items(
    predicted: list[ActionItem],
    gold: list[GoldItem],
    match: MatchSettings | None = None,
    judge: Judge | None = None,
) -> list[tuple[int, int, float]]:
    """One-to-one (predicted index, gold index, similarity) of the best total similarity."""
    match = match or MatchSettings()
    titles = [p.title for p in predicted]
    wanted = [g.title for g in gold]
    if judge is not None:
        return assign(judge.matrix(titles, wanted), 50.0)
    return assign(similarity_matrix(titles, wanted, match.similarity), match.threshold)


def score_meeting(
    example: Example,
    insights: Insights,
    match: MatchSettings | None = None,
    judge: Judge | None = None,
) -> MeetingScore:
    """How one meeting's insights compare with its gold labels."""
    return _score(example, insights, match or MatchSettings(), judge)[0]


def _score(
    example: Example, insights: Insights, match: MatchSettings, judge: Judge | None
) -> tuple[MeetingScore, list[Pair]]:
    predicted = insights.action_items
    score = MeetingScore(name=example.name, items=PRF(), predicted=len(predicted))
    for field, expected in example.crm.items():
        score.crm[field] = _crm_ok(field, expected, insights.crm)
    if example.closes is not None:
        closed = {c.title.casefold() for c in insights.closures}
        score.closures_gold = len(example.closes)
        score.closures_predicted = len(closed)
        score.closures_correct = len(closed & {t.casefold() for t in example.closes})
    if example.action_items is None:
        score.labelled = False
        return score, [Pair(predicted=i, gold=None, similarity=None) for i in range(len(predicted))]
    gold_items = example.action_items
    matched = match_items(predicted, gold_items, match, judge)
    score.items = PRF(
        tp=len(matched), fp=len(predicted) - len(matched), fn=len(gold_items) - len(matched)
    )
    score.precision = round(score.items.precision, 4)
    score.recall = round(score.items.recall, 4)
    score.f1 = round(score.items.f1, 4)
    for i, j, _ in matched:
        gold = gold_items[j]
        if "owner_email" in gold.labelled:
            score.owner_labelled += 1
            score.owner_hits += predicted[i].owner_email == gold.owner_email
        elif "owner" in gold.labelled:
            score.owner_labelled += 1
            score.owner_hits += _same_person(predicted[i].owner, gold.owner)
        if "due_date" in gold.labelled:
            score.due_labelled += 1
            score.due_hits += predicted[i].due_date == gold.due_date
        for term in gold.terms or []:
            score.term_labelled += 1
            score.term_hits += says(predicted[i].title, term)
    hit_p = {i: (j, s) for i, j, s in matched}
    hit_g = {j for _, j, _ in matched}
    score.extra = [p.title for k, p in enumerate(predicted) if k not in hit_p]
    score.missed = [g.title for k, g in enumerate(gold_items) if k not in hit_g]
    pairs = [
        Pair(
            predicted=i,
            gold=hit_p[i][0] if i in hit_p else None,
            similarity=round(hit_p[i][1], 1) if i in hit_p else None,
        )
        for i in range(len(predicted))
    ]
    return score, pairs


def stack_examples(stack: ExitStack, examples: list[Example]) -> Iterator[Example]:
    """The examples, then the stack closed (a scratch memory's database goes with it)."""
    with stack:
        yield from examples


def compare_memory(
    dataset_dir: Path,
    settings: LLMSettings,
    model: str | None = None,
    *,
    client: openai.OpenAI | None = None,
    options: EvalOptions | None = None,
) -> list[EvalReport]:
    """The same set with memory off, then on: owners, terms, closures, tokens side by side."""
    options = options or EvalOptions()
    return [
        run_eval(
            dataset_dir,
            settings,
            model,
            client=client,
            options=options.model_copy(update={"memory": memory}),
        )
        for memory in (False, True)
    ]


def _same_person(predicted: str | None, gold: str | None) -> bool:
    if predicted is None or gold is None:
        return predicted == gold
    a, b = predicted.strip().lower(), gold.strip().lower()
    return a == b or (a.split(" ")[0] == b.split(" ")[0] and " " not in b)


def pr_curve(
    scored: list[tuple[Example, list[ActionItem]]],
    match: MatchSettings,
    judge: Judge | None = None,
) -> list[CurvePoint]:
    """Precision and recall at every confidence cut the predictions offer (re-matched)."""
    cuts = sorted({0.0} | {p.confidence for _, items in scored for p in items})
    points = []
    for cut in cuts:
        counts = PRF()
        kept_total = 0
        for example, items in scored:
            kept = [p for p in items if p.confidence >= cut]
            gold = example.action_items or []
            hits = len(match_items(kept, gold, match, judge))
            counts = counts + PRF(tp=hits, fp=len(kept) - hits, fn=len(gold) - hits)
            kept_total += len(kept)
        points.append(
            CurvePoint(
                threshold=round(cut, 4),
                kept=kept_total,
                precision=round(counts.precision, 4),
                recall=round(counts.recall, 4),
                f1=round(counts.f1, 4),
            )
        )
    return points


def _dump(
    folder: Path, example: Example, insights: Insights, pairs: list[Pair], score: MeetingScore
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    gold = example.action_items
    predictions = []
    for pair in pairs:
        item = insights.action_items[pair.predicted]
        span = insights.evidence.get(f"/action_items/{pair.predicted}")
        predictions.append(
            {
                **item.model_dump(),
                "evidence_span": span.model_dump() if span else None,
                "match": (
                    None
                    if gold is None
                    else {
                        "verdict": "tp" if pair.gold is not None else "fp",
                        "gold": gold[pair.gold].model_dump() if pair.gold is not None else None,
                        "similarity": pair.similarity,
                    }
                ),
            }
        )
    hit = {p.gold for p in pairs if p.gold is not None}
    body = {
        "meeting": example.name,
        "labelled": gold is not None,
        "score": score.model_dump(),
        "predictions": predictions,
        "missed": [g.model_dump() for k, g in enumerate(gold or []) if k not in hit],
    }
    (folder / f"{example.name}.json").write_text(json.dumps(body, indent=2, ensure_ascii=False))


def _crm_ok(field: str, expected: Any, crm: CrmFields | None) -> bool:
    fact = getattr(crm, field, None) if crm is not None else None
    if expected is None:
        return fact is None
    if fact is None:
        return False
    if field == "amount":
        value_ok = abs(fact.value - float(expected["value"])) <= 0.01 * float(expected["value"])
        return value_ok and ("currency" not in expected or fact.currency == expected["currency"])
    if field in {"close_date", "stage"}:
        return str(fact.value).lower() == str(expected).lower()
    if field == "competitors":
        return {v.lower() for v in fact.values} == {v.lower() for v in expected}
    if isinstance(expected, list):
        return all(
            any(fuzz.partial_ratio(e.lower(), v.lower()) >= TEXT_MATCH for v in fact.values)
            for e in expected
        )
    return fuzz.partial_ratio(str(expected).lower(), str(fact.value).lower()) >= TEXT_MATCH


def evaluate(
    dataset_dir: Path,
    settings: LLMSettings,
    model: str | None = None,
    variants: list[str] | None = None,
    options: EvalOptions | None = None,
    memory_compare: bool = False,
) -> list[EvalReport]:
    """One report, or one per variant when comparing: what `meetsync eval` runs."""
    if memory_compare:
        return compare_memory(dataset_dir, settings, model, options=options)
    if variants:
        return compare(dataset_dir, settings, variants, options=options)
    return [run_eval(dataset_dir, settings, model, options=options)]


def reports_json(reports: list[EvalReport]) -> str:
    """The report as JSON; a list of reports when several variants ran."""
    if len(reports) == 1:
        return reports[0].model_dump_json(indent=2)
    return json.dumps([r.model_dump(mode="json") for r in reports], indent=2)
