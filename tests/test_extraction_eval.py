"""The eval harness: scores a labelled dataset through the real SDK and the emulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from extraction.eval import Example, GoldItem, cost, run_eval, score_meeting
from extraction.llm import CallUsage
from extraction.schemas import ActionItem, Insights
from meetsync.samples import load_sample
from meetsync.settings import LLMSettings
from sandbox.server import Sandbox

DEV = Path(__file__).resolve().parents[1] / "extraction" / "datasets" / "dev"


def _item(title: str, email: str | None, due: str | None) -> ActionItem:
    return ActionItem(
        title=title, description=None, owner=None, owner_email=email, due_date=due,
        priority=None, confidence=0.9, evidence="x",
    )  # fmt: skip


def test_rules_model_scores_on_the_dev_set(sandbox: Sandbox) -> None:
    report = run_eval(DEV, LLMSettings(base_url=sandbox.urls["openai"]), None)
    assert report.meetings == 17 and report.labelled_meetings == 16
    assert report.precision >= 0.9 and report.recall >= 0.85
    assert report.intervals is not None and report.intervals.f1.low >= 0.8
    assert report.grounding_rate == 1.0
    assert report.owner_accuracy is not None and report.owner_accuracy >= 0.95
    assert report.input_tokens > report.output_tokens > 0
    assert report.cost_usd > 0


def test_model_override_applies_to_every_task_and_its_price(sandbox: Sandbox) -> None:
    settings = LLMSettings(base_url=sandbox.urls["openai"])
    cheap = run_eval(DEV, settings, "gpt-4o-mini")
    dear = run_eval(DEV, settings, "gpt-4o")
    assert dear.models == {"action_items": "gpt-4o", "crm_fields": "gpt-4o"}
    assert dear.cost_usd > cheap.cost_usd > 0


def test_matching_counts_misses_extras_owner_and_due() -> None:
    gold = [
        GoldItem(title="Send the SOC 2 report", owner_email="sam@acme.io", due_date="2026-11-20",
                 labelled={"owner_email", "due_date"}),
        GoldItem(title="Loop in legal", owner_email="bill@initech.com", labelled={"owner_email"}),
    ]  # fmt: skip
    example = Example(name="t", meeting=load_sample("initech_qbr"), action_items=gold)
    predicted = [
        _item("Send SOC 2 report", "sam@acme.io", "2026-11-21"),
        _item("Book a dinner", None, None),
    ]
    score = score_meeting(example, Insights(action_items=predicted))
    assert (score.items.tp, score.items.fp, score.items.fn) == (1, 1, 1)
    assert (score.owner_hits, score.owner_labelled) == (1, 1)
    assert (score.due_hits, score.due_labelled) == (0, 1)
    assert score.missed == ["Loop in legal"] and score.extra == ["Book a dinner"]


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        pytest.param("gpt-4o-mini", 0.15 + 0.60, id="gpt-4o-mini"),
        pytest.param("sandbox-small", 0.0, id="unpriced"),
    ],
)
def test_cost_uses_the_price_table(model: str, expected: float) -> None:
    usage = [CallUsage(task="t", model=model, prompt_version="v1", input_tokens=1_000_000,
                       output_tokens=1_000_000)]  # fmt: skip
    assert cost(usage, LLMSettings().prices) == pytest.approx(expected)
