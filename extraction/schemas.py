"""What the LLM returns, as pydantic models valid for OpenAI strict structured outputs.

Strict mode wants every property required and no free-form objects, so optional values
are `X | None` without defaults, and evidence is a verbatim quote the grounding step
locates in the transcript afterwards.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ActionItem(_Strict):
    title: str = Field(
        description="Imperative, under 12 words, e.g. 'Send the security questionnaire'"
    )
    description: str | None = Field(description="One or two sentences of context, or null")
    owner: str | None = Field(description="The attendee or spoken name who committed, or null")
    owner_email: str | None = Field(description="The owner's email if they are an attendee")
    due_date: str | None = Field(
        description="ISO date YYYY-MM-DD resolved against the meeting date"
    )
    priority: Literal["low", "medium", "high"] | None
    confidence: float = Field(description="0..1: how clearly the transcript states this commitment")
    evidence: str = Field(description="A verbatim quote from the transcript that states it")


class ActionItems(_Strict):
    """Result of the action-items task."""

    action_items: list[ActionItem]


class TextFact(_Strict):
    value: str
    evidence: str = Field(description="Verbatim quote from the transcript")


class AmountFact(_Strict):
    value: float
    currency: str | None = Field(description="ISO 4217 code, e.g. USD")
    evidence: str


class DateFact(_Strict):
    value: str = Field(description="ISO date YYYY-MM-DD")
    evidence: str


class ListFact(_Strict):
    values: list[str]
    evidence: str


class CrmFields(_Strict):
    """Result of the CRM-fields task; every field null unless the transcript states it."""

    next_steps: TextFact | None
    stage: TextFact | None
    amount: AmountFact | None
    close_date: DateFact | None
    competitors: ListFact | None
    pain_points: ListFact | None
    decision_makers: ListFact | None
    budget: TextFact | None
    timeline: TextFact | None
    risks: ListFact | None


class EvidenceSpan(BaseModel):
    """Where a quote sits in the transcript."""

    utterance_index: int
    start: int
    end: int
    score: float


class Closure(BaseModel):
    """An earlier meeting's open commitment this meeting reports as done."""

    commitment: str = Field(description="The commitment's id as org memory shows it (c-…)")
    title: str
    evidence: str = Field(description="The sentence that says it is done, verbatim")
    utterance_index: int


class Insights(BaseModel):
    """Everything extracted from one meeting, after grounding."""

    action_items: list[ActionItem] = Field(default_factory=list)
    crm: CrmFields | None = None
    evidence: dict[str, EvidenceSpan] = Field(
        default_factory=dict, description="JSON pointer of an item → where its quote sits"
    )
    dropped_ungrounded: int = Field(
        default=0, description="items and facts whose quote was not found"
    )
    dropped_values: dict[str, int] = Field(
        default_factory=dict,
        description="values their quote does not support, by field: 'action_items.owner', "
        "'crm.amount', …; each dropped value is null (a list loses the values)",
    )
    dropped_prompt_echo: int = Field(
        default=0,
        description="items, notes and facts that quoted the prompt, not the meeting, or whose "
        "quote talks to the model (an injection attempt)",
    )
    closures: list[Closure] = Field(
        default_factory=list,
        description="open commitments from earlier meetings (org memory) this one closes",
    )
