"""Offline evaluation: run extraction over a labelled dataset and score it.

Action items are matched one-to-one to gold items by title meaning (rapidfuzz token-set
ratio), then owner and due date are checked where the gold labels them. CRM fields are
scored per labelled field. The dataset format is described in extraction/datasets/README.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
from pydantic import BaseModel, Field
from rapidfuzz import fuzz

from extraction.extract import extract_insights
from extraction.llm import CallUsage, make_client
from extraction.schemas import ActionItem, CrmFields, Insights
from meetsync.models import MeetingOutput
from meetsync.settings import LLMSettings

TITLE_MATCH = 70.0
TEXT_MATCH = 70.0


class GoldItem(BaseModel):
    """One expected action item; owner and due date are scored only when present."""

    title: str
    owner_email: str | None = None
    due_date: str | None = None
    labelled: set[str] = Field(default_factory=set, exclude=True)


class Example(BaseModel):
    """One labelled meeting."""

    name: str
    meeting: MeetingOutput
    action_items: list[GoldItem]
    crm: dict[str, Any] = Field(default_factory=dict)


class PRF(BaseModel):
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


class MeetingScore(BaseModel):
    name: str
    items: PRF
    owner_hits: int = 0
    owner_labelled: int = 0
    due_hits: int = 0
    due_labelled: int = 0
    crm: dict[str, bool] = Field(default_factory=dict)
    missed: list[str] = Field(default_factory=list)
    extra: list[str] = Field(default_factory=list)


class EvalReport(BaseModel):
    """Scores over a dataset, plus what the run cost."""

    dataset: str
    models: dict[str, str]
    meetings: int
    precision: float
    recall: float
    f1: float
    owner_accuracy: float | None
    due_date_accuracy: float | None
    crm_accuracy: dict[str, float]
    grounding_rate: float
    input_tokens: int
    output_tokens: int
    cost_usd: float
    per_meeting: list[MeetingScore]


def load_dataset(dataset_dir: Path) -> list[Example]:
    """Every `*.json` example in the folder, sorted by name."""
    examples = []
    for path in sorted(Path(dataset_dir).glob("*.json")):
        raw = json.loads(path.read_text())
        gold = raw.get("gold", {})
        items = []
        for item in gold.get("action_items", []):
            parsed = GoldItem.model_validate(item)
            parsed.labelled = {k for k in ("owner_email", "due_date") if k in item}
            items.append(parsed)
        examples.append(
            Example(
                name=path.stem,
                meeting=MeetingOutput.model_validate(raw["meeting"]),
                action_items=items,
                crm=gold.get("crm", {}),
            )
        )
    return examples


def run_eval(
    dataset_dir: Path,
    settings: LLMSettings,
    model: str | None = None,
    *,
    client: openai.OpenAI | None = None,
    org_profile: dict[str, Any] | None = None,
) -> EvalReport:
    """Extract every example with `settings` (or `model` for every task) and score it."""
    if model is not None:
        settings = settings.model_copy(update={"models": dict.fromkeys(settings.models, model)})
    own_client = client is None
    client = client or make_client(settings)
    scores: list[MeetingScore] = []
    usage: list[CallUsage] = []
    grounded = dropped = 0
    crm_totals: dict[str, list[bool]] = {}
    try:
        for example in load_dataset(dataset_dir):
            result = extract_insights(
                example.meeting, settings=settings, org_profile=org_profile, client=client
            )
            usage += result.usage
            insights = result.insights
            grounded += len(insights.action_items) + _facts(insights.crm)
            dropped += insights.dropped_ungrounded
            score = score_meeting(example, insights)
            for field, ok in score.crm.items():
                crm_totals.setdefault(field, []).append(ok)
            scores.append(score)
    finally:
        if own_client:
            client.close()
    total = PRF(
        tp=sum(s.items.tp for s in scores),
        fp=sum(s.items.fp for s in scores),
        fn=sum(s.items.fn for s in scores),
    )
    owner_labelled = sum(s.owner_labelled for s in scores)
    due_labelled = sum(s.due_labelled for s in scores)
    return EvalReport(
        dataset=str(dataset_dir),
        models=dict(settings.models),
        meetings=len(scores),
        precision=round(total.precision, 4),
        recall=round(total.recall, 4),
        f1=round(total.f1, 4),
        owner_accuracy=(
            round(sum(s.owner_hits for s in scores) / owner_labelled, 4) if owner_labelled else None
        ),
        due_date_accuracy=(
            round(sum(s.due_hits for s in scores) / due_labelled, 4) if due_labelled else None
        ),
        crm_accuracy={k: round(sum(v) / len(v), 4) for k, v in sorted(crm_totals.items())},
        grounding_rate=round(grounded / (grounded + dropped), 4) if grounded + dropped else 1.0,
        input_tokens=sum(u.input_tokens for u in usage),
        output_tokens=sum(u.output_tokens for u in usage),
        cost_usd=round(cost(usage, settings.prices), 6),
        per_meeting=scores,
    )


def cost(usage: list[CallUsage], prices: dict[str, tuple[float, float]]) -> float:
    """USD for these calls at the configured per-model prices."""
    total = 0.0
    for call in usage:
        price_in, price_out = prices.get(call.model, (0.0, 0.0))
        total += (call.input_tokens * price_in + call.output_tokens * price_out) / 1_000_000
    return total


def _facts(crm: CrmFields | None) -> int:
    if crm is None:
        return 0
    return sum(getattr(crm, name) is not None for name in CrmFields.model_fields)


def match_items(predicted: list[ActionItem], gold: list[GoldItem]) -> list[tuple[int, int]]:
    """One-to-one (predicted index, gold index) pairs, best title matches first."""
    pairs = sorted(
        (
            (fuzz.token_set_ratio(p.title.lower(), g.title.lower()), i, j)
            for i, p in enumerate(predicted)
            for j, g in enumerate(gold)
        ),
        reverse=True,
    )
    used_p: set[int] = set()
    used_g: set[int] = set()
    matched = []
    for score, i, j in pairs:
        if score < TITLE_MATCH:
            break
        if i not in used_p and j not in used_g:
            used_p.add(i)
            used_g.add(j)
            matched.append((i, j))
    return matched


def score_meeting(example: Example, insights: Insights) -> MeetingScore:
    """How one meeting's insights compare with its gold labels."""
    predicted = insights.action_items
    matched = match_items(predicted, example.action_items)
    score = MeetingScore(
        name=example.name,
        items=PRF(
            tp=len(matched),
            fp=len(predicted) - len(matched),
            fn=len(example.action_items) - len(matched),
        ),
    )
    for i, j in matched:
        gold = example.action_items[j]
        if "owner_email" in gold.labelled:
            score.owner_labelled += 1
            score.owner_hits += predicted[i].owner_email == gold.owner_email
        if "due_date" in gold.labelled:
            score.due_labelled += 1
            score.due_hits += predicted[i].due_date == gold.due_date
    hit_p = {i for i, _ in matched}
    hit_g = {j for _, j in matched}
    score.extra = [p.title for k, p in enumerate(predicted) if k not in hit_p]
    score.missed = [g.title for k, g in enumerate(example.action_items) if k not in hit_g]
    for field, expected in example.crm.items():
        score.crm[field] = _crm_ok(field, expected, insights.crm)
    return score


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
