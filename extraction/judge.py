"""Judge mode for matching: an OpenAI-compatible model decides if two items are one commitment.

The prompt is versioned like the extraction prompts (`prompts/judge/<version>.md`). Only
pairs that fuzzy matching finds at least loosely similar are asked, and each distinct pair
is asked once per run, so a judge run costs a bounded number of small calls.
"""

from __future__ import annotations

from collections.abc import Sequence

import openai
from pydantic import BaseModel, ConfigDict, Field

from extraction.llm import CallUsage, call_structured
from extraction.matching import normalise, similarity_matrix
from extraction.prompting import load_prompt

TASK = "judge"
DEFAULT_PROMPT = "v1"
PREFILTER = 35.0  # below this token-set similarity two titles are never the same work


class Verdict(BaseModel):
    """The judge's answer for one pair."""

    model_config = ConfigDict(extra="forbid")

    same: bool
    reason: str = Field(description="One sentence")


class Judge:
    """Asks `model` about pairs of titles; similarity is 100 for 'same', else 0."""

    def __init__(
        self, client: openai.OpenAI, model: str, prompt_version: str = DEFAULT_PROMPT
    ) -> None:
        self.client, self.model, self.prompt_version = client, model, prompt_version
        self.usage: list[CallUsage] = []
        self._verdicts: dict[tuple[str, str], bool] = {}

    def same(self, a: str, b: str) -> bool:
        """Whether the two items are the same commitment (asked once per distinct pair)."""
        key = (normalise(a), normalise(b))
        if key not in self._verdicts:
            system, user = load_prompt(TASK, self.prompt_version)
            values = {"item_a": " ".join(a.split()), "item_b": " ".join(b.split())}
            verdict, usages = call_structured(
                self.client,
                task=TASK,
                model=self.model,
                prompt_version=self.prompt_version,
                messages=[
                    {"role": "system", "content": system.safe_substitute(values)},
                    {"role": "user", "content": user.safe_substitute(values)},
                ],
                schema=Verdict,
                max_output_tokens=200,
            )
            self.usage += usages
            self._verdicts[key] = verdict.same
        return self._verdicts[key]

    def matrix(self, predicted: Sequence[str], gold: Sequence[str]) -> list[list[float]]:
        """Judge similarity of every pair; loosely similar pairs only are asked."""
        loose = similarity_matrix(predicted, gold, "token_set")
        return [
            [
                100.0 if loose[i][j] >= PREFILTER and self.same(p, g) else 0.0
                for j, g in enumerate(gold)
            ]
            for i, p in enumerate(predicted)
        ]
