"""The eval matcher: one-to-one optimal assignment, where a greedy pick would lose a pair."""

from __future__ import annotations

import itertools
import random

import pytest

from extraction.bootstrap import PRF, bootstrap
from extraction.dataset import GoldItem
from extraction.eval import match_items
from extraction.matching import MatchSettings, assign, greedy, hungarian, normalise
from extraction.schemas import ActionItem


def _item(title: str, confidence: float = 0.9) -> ActionItem:
    return ActionItem(
        title=title, description=None, owner=None, owner_email=None, due_date=None,
        priority=None, confidence=confidence, evidence="x",
    )  # fmt: skip


def test_optimal_assignment_keeps_both_pairs_where_greedy_keeps_one() -> None:
    # given: prediction 0 is closest to gold 0, but prediction 1 can only match gold 0
    scores = [[90.0, 80.0], [85.0, 10.0]]
    # expect: greedy takes (0, 0) and strands prediction 1; the optimum pairs both
    assert [(i, j) for i, j, _ in greedy(scores, 70)] == [(0, 0)]
    assert sorted((i, j) for i, j, _ in assign(scores, 70)) == [(0, 1), (1, 0)]


def test_match_items_on_titles_where_greedy_is_wrong() -> None:
    predicted = [_item("Send the renewal quote to Bill"), _item("Send the quote")]
    gold = [GoldItem(title="Send Bill the renewal quote"),
            GoldItem(title="Send the renewal quote to finance")]  # fmt: skip
    settings = MatchSettings(similarity="token_sort", threshold=60)
    pairs = match_items(predicted, gold, settings)
    assert sorted((i, j) for i, j, _ in pairs) == [(0, 1), (1, 0)]


def test_below_threshold_is_never_a_match() -> None:
    assert assign([[69.9, 0.0], [0.0, 30.0]], 70) == []
    assert assign([], 70) == [] and assign([[]], 70) == []


@pytest.mark.parametrize("size", [pytest.param(n, id=f"{n}x{n}") for n in (1, 2, 3, 4, 5)])
def test_hungarian_finds_the_brute_force_optimum(size: int) -> None:
    rng = random.Random(size)
    for _ in range(20):
        cost = [[rng.choice([0.0, 1.0, 2.5, 7.0, rng.random() * 10]) for _ in range(size)]
                for _ in range(size)]  # fmt: skip
        best = min(sum(cost[i][p[i]] for i in range(size))
                   for p in itertools.permutations(range(size)))  # fmt: skip
        chosen = hungarian(cost)
        assert sorted(chosen) == list(range(size))
        assert sum(cost[i][chosen[i]] for i in range(size)) == pytest.approx(best)


def test_rectangular_matrices_assign_at_most_the_smaller_side() -> None:
    scores = [[95.0, 72.0, 10.0]]
    assert assign(scores, 70) == [(0, 0, 95.0)]
    assert sorted(assign([[80.0], [90.0], [75.0]], 70)) == [(1, 0, 90.0)]


def test_normalise_drops_case_punctuation_articles_and_fillers() -> None:
    assert normalise("Um, send THE deck — uh, to Bill!") == "send deck to bill"


def test_bootstrap_interval_on_a_fixed_set_is_seeded_and_brackets_the_estimate() -> None:
    counts = [PRF(tp=4, fp=1, fn=0), PRF(tp=2, fp=0, fn=2), PRF(tp=0, fp=2, fn=1),
              PRF(tp=5, fp=0, fn=1), PRF(tp=3, fp=1, fn=1)]  # fmt: skip
    first = bootstrap(counts, resamples=1000, seed=7)
    again = bootstrap(counts, resamples=1000, seed=7)
    other = bootstrap(counts, resamples=1000, seed=8)
    assert first == again  # deterministic for a seed
    assert first != other
    # micro totals: tp 14, fp 4, fn 5
    assert first.precision.value == pytest.approx(14 / 18, abs=1e-4)
    assert first.recall.value == pytest.approx(14 / 19, abs=1e-4)
    for interval in (first.precision, first.recall, first.f1):
        assert 0.0 <= interval.low < interval.value < interval.high <= 1.0
    # resampling five meetings leaves real doubt: the F1 interval is wide
    assert first.f1.high - first.f1.low > 0.15
    # pinned figures for this seed, so a change in the method shows up here
    assert (first.f1.low, first.f1.high) == (0.5, 0.875)
    assert (first.precision.low, first.precision.high) == (0.4615, 0.9474)


def test_bootstrap_of_one_certain_meeting_has_no_width() -> None:
    single = bootstrap([PRF(tp=3, fp=0, fn=0)], resamples=200, seed=1)
    assert single.f1.low == single.f1.high == single.f1.value == 1.0
