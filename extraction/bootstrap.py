"""Counts, precision/recall/F1 and seeded bootstrap intervals over meetings.

Items in one meeting are not independent (one speaker's style, one transcript's quality),
so the bootstrap resamples whole meetings: each replicate draws as many meetings as the
set has, with replacement, sums their counts and scores the sum. Percentile intervals;
the same seed gives the same interval on every machine.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from pydantic import BaseModel

DEFAULT_SEED = 17
DEFAULT_RESAMPLES = 2000
DEFAULT_LEVEL = 0.95


class PRF(BaseModel):
    """True positives, false positives and false negatives, and the scores they give."""

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

    def __add__(self, other: PRF) -> PRF:
        return PRF(tp=self.tp + other.tp, fp=self.fp + other.fp, fn=self.fn + other.fn)


class Interval(BaseModel):
    """A point estimate and its bootstrap interval."""

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


class Intervals(BaseModel):
    precision: Interval
    recall: Interval
    f1: Interval
    level: float
    resamples: int
    seed: int


def total(counts: Sequence[PRF]) -> PRF:
    """The sum of per-meeting counts."""
    out = PRF()
    for c in counts:
        out = out + c
    return out


def bootstrap(
    counts: Sequence[PRF],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    level: float = DEFAULT_LEVEL,
) -> Intervals:
    """Percentile intervals of micro precision, recall and F1, resampling meetings."""
    point = total(counts)
    rng = random.Random(seed)
    n = len(counts)
    samples: dict[str, list[float]] = {"precision": [], "recall": [], "f1": []}
    for _ in range(resamples if n else 0):
        tp = fp = fn = 0
        for _ in range(n):
            c = counts[rng.randrange(n)]
            tp, fp, fn = tp + c.tp, fp + c.fp, fn + c.fn
        replicate = PRF(tp=tp, fp=fp, fn=fn)
        samples["precision"].append(replicate.precision)
        samples["recall"].append(replicate.recall)
        samples["f1"].append(replicate.f1)
    tail = (1 - level) / 2

    def interval(name: str, value: float) -> Interval:
        values = sorted(samples[name])
        if not values:
            return Interval(value=round(value, 4), low=round(value, 4), high=round(value, 4))
        low = values[int(tail * (len(values) - 1))]
        high = values[round((1 - tail) * (len(values) - 1))]
        return Interval(value=round(value, 4), low=round(low, 4), high=round(high, 4))

    return Intervals(
        precision=interval("precision", point.precision),
        recall=interval("recall", point.recall),
        f1=interval("f1", point.f1),
        level=level,
        resamples=resamples,
        seed=seed,
    )
