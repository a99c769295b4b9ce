"""The extract stage: a finished meeting in, grounded Insights and token usage out.

Per task (action items, CRM fields): the transcript is cut into chunks that fit the model's
context, each chunk is one structured-output call, a truncated answer splits its chunk in
two and retries, chunk answers are merged, then every item is grounded in the transcript.
"""

from __future__ import annotations

import logging
from typing import Any

import openai
from pydantic import BaseModel, Field

from extraction.chunking import (
    Numbered,
    context_window,
    count_tokens,
    halves,
    merge_crm,
    merge_items,
    plan_chunks,
)
from extraction.errors import LLMInvalidOutput
from extraction.grounding import ground
from extraction.llm import CallUsage, InputTooLong, Truncated, call_structured, shared_client
from extraction.memory.closure import find_closures
from extraction.prompt_echo import instructions
from extraction.prompting import render_messages
from extraction.schemas import ActionItems, CrmFields, Insights
from meetsync.models import MeetingOutput
from meetsync.settings import LLMSettings

log = logging.getLogger(__name__)

TASKS = ("action_items", "crm_fields")
SAFETY_MARGIN = 0.9  # tiktoken's count of our rendering is close to, not exactly, the server's
MAX_SPLIT_DEPTH = 8


class ExtractionResult(BaseModel):
    """What one extraction produced, and what it cost."""

    insights: Insights
    usage: list[CallUsage] = Field(default_factory=list)


def extract_insights(
    meeting: MeetingOutput,
    *,
    settings: LLMSettings,
    org_profile: dict[str, Any] | None = None,
    client: openai.OpenAI | None = None,
) -> ExtractionResult:
    """Action items and CRM fields for `meeting`, grounded in its transcript."""
    numbered: Numbered = [(i, u) for i, u in enumerate(meeting.transcript) if u.text.strip()]
    if not numbered:
        return ExtractionResult(insights=Insights())
    client = client or shared_client(settings)
    usage: list[CallUsage] = []
    runner = _Runner(client, settings, meeting, org_profile, usage)
    items = merge_items([r.action_items for r in runner.run("action_items", numbered, ActionItems)])
    crm = merge_crm(runner.run("crm_fields", numbered, CrmFields))
    prompts = tuple((task, settings.prompt_versions[task]) for task in TASKS)
    insights = ground(items, crm, meeting, org_profile, instructions(prompts))
    insights.closures = find_closures(meeting, org_profile)  # earlier commitments now done
    values = sum(insights.dropped_values.values())
    if insights.dropped_ungrounded or values or insights.dropped_prompt_echo:
        log.info(
            "dropped ungrounded items and values",
            extra={
                "meeting_id": meeting.meeting_id,
                "dropped": insights.dropped_ungrounded,
                "dropped_values": values,
                "dropped_prompt_echo": insights.dropped_prompt_echo,
            },
        )
    return ExtractionResult(insights=insights, usage=usage)


class _Runner:
    """Runs one task over chunks, splitting any chunk whose answer or prompt is too long."""

    def __init__(
        self,
        client: openai.OpenAI,
        settings: LLMSettings,
        meeting: MeetingOutput,
        profile: dict[str, Any] | None,
        usage: list[CallUsage],
    ) -> None:
        self.client, self.settings, self.meeting = client, settings, meeting
        self.profile, self.usage = profile, usage

    def run(self, task: str, numbered: Numbered, schema: type[Any]) -> list[Any]:
        model = self.settings.models[task]
        version = self.settings.prompt_versions[task]
        overhead = sum(
            count_tokens(m["content"]) + 4
            for m in render_messages(task, version, self.meeting, [], self.profile)
        )
        window = context_window(model, self.settings.context_windows)
        budget = int((window - self.settings.max_output_tokens) * SAFETY_MARGIN) - overhead
        if budget <= 0:
            budget = max(64, int(window * 0.5) - overhead)
        chunks = plan_chunks(numbered, budget, self.settings.chunk_overlap_utterances)
        results: list[Any] = []
        for chunk in chunks:
            results += self._answer(task, model, version, chunk, schema, depth=0)
        return results

    def _answer(
        self, task: str, model: str, version: str, chunk: Numbered, schema: type[Any], depth: int
    ) -> list[Any]:
        messages = render_messages(task, version, self.meeting, chunk, self.profile)
        try:
            parsed, usages = call_structured(
                self.client,
                task=task,
                model=model,
                prompt_version=version,
                messages=messages,
                schema=schema,
                max_output_tokens=min(
                    self.settings.max_output_tokens,
                    context_window(model, self.settings.context_windows),
                ),
                reasoning_effort=self.settings.reasoning_effort,
                params=self.settings.params.get(task),
            )
        except (Truncated, InputTooLong) as exc:
            if isinstance(exc, Truncated):
                self.usage.append(exc.usage)
            pieces = halves(chunk)
            if len(pieces) < 2 or depth >= MAX_SPLIT_DEPTH:
                raise LLMInvalidOutput(
                    f"{task}: answer for a single utterance exceeds the output limit"
                ) from exc
            log.info("splitting a chunk", extra={"task": task, "utterances": len(chunk)})
            return [
                result
                for piece in pieces
                for result in self._answer(task, model, version, piece, schema, depth + 1)
            ]
        self.usage.extend(usages)
        return [parsed]
