"""One-to-one matching of predicted action items to gold ones, by an optimal assignment.

Titles are normalised (case, punctuation, fillers, articles) and compared with a rapidfuzz
scorer; the assignment maximises the total similarity of the pairs at or above the
threshold (the Hungarian algorithm), so one greedy early pick can never cost a later pair.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Literal

from pydantic import BaseModel
from rapidfuzz import fuzz

Similarity = Literal["token_set", "token_sort", "ratio", "partial", "wratio"]
SCORERS: dict[str, Callable[..., float]] = {
    "token_set": fuzz.token_set_ratio,
    "token_sort": fuzz.token_sort_ratio,
    "ratio": fuzz.ratio,
    "partial": fuzz.partial_ratio,
    "wratio": fuzz.WRatio,
}
DEFAULT_SIMILARITY: Similarity = "token_set"
DEFAULT_THRESHOLD = 70.0

_FILLERS = re.compile(
    r"\b(?:the|a|an|um+|uh+|er+|erm|like|just|please|you know|i mean|sort of|kind of)\b"
)
_PUNCT = re.compile(r"[^\w\s']")


class MatchSettings(BaseModel):
    """How items are compared; the report records it so figures can be reproduced."""

    similarity: Similarity = DEFAULT_SIMILARITY
    threshold: float = DEFAULT_THRESHOLD
    judge_model: str | None = None
    judge_prompt: str | None = None


def normalise(text: str) -> str:
    """Lower case, no punctuation, no articles or fillers, single spaces."""
    text = _PUNCT.sub(" ", text.lower().replace("’", "'"))
    text = _FILLERS.sub(" ", text)
    return " ".join(text.split())


def similarity_matrix(
    predicted: Sequence[str], gold: Sequence[str], similarity: Similarity = DEFAULT_SIMILARITY
) -> list[list[float]]:
    """Similarity 0..100 of every (predicted, gold) title pair after normalisation."""
    scorer = SCORERS[similarity]
    norm_gold = [normalise(g) for g in gold]
    return [[float(scorer(normalise(p), g)) for g in norm_gold] for p in predicted]


def assign(scores: list[list[float]], threshold: float) -> list[tuple[int, int, float]]:
    """(row, column, score) pairs of a one-to-one assignment with the largest total score.

    Only pairs scoring at least `threshold` count; among assignments of equal total the
    one with more pairs wins, so a tie never drops a pair.
    """
    rows = len(scores)
    cols = len(scores[0]) if rows else 0
    if not rows or not cols:
        return []
    size = max(rows, cols)
    top = max(max(r) for r in scores) + 1.0
    # minimise cost = top - score; a pair below threshold costs as much as no pair at all
    cost = [
        [
            top - scores[i][j] if i < rows and j < cols and scores[i][j] >= threshold else top
            for j in range(size)
        ]
        for i in range(size)
    ]
    chosen = hungarian(cost)
    return [
        (i, j, scores[i][j])
        for i, j in enumerate(chosen)
        if i < rows and j < cols and scores[i][j] >= threshold
    ]


def hungarian(cost: list[list[float]]) -> list[int]:
    """For a square cost matrix, the column given to each row in a minimum-cost assignment."""
    n = len(cost)
    inf = float("inf")
    u = [0.0] * (n + 1)
    v = [0.0] * (n + 1)
    owner = [0] * (n + 1)  # owner[j]: the row (1-based) holding column j
    way = [0] * (n + 1)
    for i in range(1, n + 1):
        owner[0] = i
        j0 = 0
        minv = [inf] * (n + 1)
        used = [False] * (n + 1)
        while True:
            used[j0] = True
            i0, delta, j1 = owner[j0], inf, 0
            for j in range(1, n + 1):
                if not used[j]:
                    reduced = cost[i0 - 1][j - 1] - u[i0] - v[j]
                    if reduced < minv[j]:
                        minv[j], way[j] = reduced, j0
                    if minv[j] < delta:
                        delta, j1 = minv[j], j
            for j in range(n + 1):
                if used[j]:
                    u[owner[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    column = [0] * n
    for j in range(1, n + 1):
        if owner[j]:
            column[owner[j] - 1] = j - 1
    return column


def greedy(scores: list[list[float]], threshold: float) -> list[tuple[int, int, float]]:
    """Best pairs first, each item used once: the old matcher, kept to show where it loses."""
    pairs = sorted(
        ((s, i, j) for i, row in enumerate(scores) for j, s in enumerate(row)), reverse=True
    )
    used_rows: set[int] = set()
    used_cols: set[int] = set()
    out = []
    for s, i, j in pairs:
        if s < threshold:
            break
        if i not in used_rows and j not in used_cols:
            used_rows.add(i)
            used_cols.add(j)
            out.append((i, j, s))
    return out
