"""Org memory entries: what an organisation has taught meetsync, kept as data.

Four kinds, each a small pydantic model checked where it comes in (the CLI, the admin API,
an import file, a provider sync) and stored as one `memory_entries` row:

    person       a name with its spoken aliases and transcription misspellings, email,
                 role, team, provider ids and the accounts they own
    term         a product, customer, competitor or jargon word, spelled right, with the
                 ways transcription gets it wrong
    preference   how the org wants things done, in a sentence the prompts can carry
    commitment   an open (or closed) action item from an earlier meeting, per account and
                 per person, that a later meeting may close

Memory is per org, never shared between orgs and never used for training: it is only
retrieved per meeting and rendered into the prompt (extraction/memory/).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

MAX_NAME_CHARS = 120
MAX_TEXT_CHARS = 400  # one entry may not crowd out the transcript: ~100 tokens at most
MAX_ALIASES = 20
MAX_ACCOUNTS = 50

Kind = Literal["person", "term", "preference", "commitment"]
KINDS: tuple[Kind, ...] = ("person", "term", "preference", "commitment")
Source = Literal["admin", "import", "salesforce", "asana", "slack", "meeting", "review"]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=400)]
Short = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("aliases", check_fields=False)
    @classmethod
    def _distinct(cls, aliases: list[str]) -> list[str]:
        seen: dict[str, str] = {}
        for alias in aliases:
            seen.setdefault(alias.casefold(), alias)
        return list(seen.values())


class PersonEntry(_Entry):
    """Someone in (or close to) the org."""

    name: Name = Field(description="Canonical full name, as tasks should name them")
    aliases: list[Name] = Field(
        default_factory=list,
        max_length=MAX_ALIASES,
        description="Spoken names and transcription misspellings: 'Jon', 'John Smyth'",
    )
    email: Short | None = None
    role: Short | None = None
    team: Short | None = None
    slack_id: Short | None = None
    asana_id: Short | None = None
    salesforce_id: Short | None = None
    accounts: list[Name] = Field(
        default_factory=list, max_length=MAX_ACCOUNTS, description="Accounts they own"
    )

    @field_validator("email")
    @classmethod
    def _email(cls, email: str | None) -> str | None:
        if email is not None and (email.count("@") != 1 or " " in email):
            raise ValueError(f"{email!r} is not an email address")
        return email.lower() if email else None


class TermEntry(_Entry):
    """A word the org uses, spelled right."""

    name: Name = Field(description="The correct spelling: 'Kubernetes', 'Globex'")
    aliases: list[Name] = Field(
        default_factory=list, max_length=MAX_ALIASES, description="Misspellings: 'Cooper Netties'"
    )
    category: Literal["product", "customer", "competitor", "jargon", "other"] = "other"
    meaning: Text | None = None


Scalar = Annotated[str, StringConstraints(max_length=400)] | int | float | bool
MAX_RULE_FIELDS = 10


class PreferenceWhen(_Entry):
    """Which planned ops a preference rule applies to: every condition given must hold."""

    destination: Name | None = Field(default=None, description="A mapping destination's name")
    connector: Short | None = Field(default=None, description="salesforce, asana, slack, …")
    item_text_contains: Short | None = Field(
        default=None, description="Words in the action item's title or description (any case)"
    )
    attendee_domain: Short | None = Field(
        default=None, description="An attendee's email domain: partner.com"
    )

    @field_validator("attendee_domain")
    @classmethod
    def _domain(cls, domain: str | None) -> str | None:
        return domain.removeprefix("@").lower() if domain else None


class PreferenceThen(_Entry):
    """What the planner does to an op a rule applies to."""

    set: dict[Name, Scalar] = Field(
        default_factory=dict, max_length=MAX_RULE_FIELDS, description="Fields to write"
    )
    set_target: dict[Name, Scalar] = Field(
        default_factory=dict, max_length=MAX_RULE_FIELDS, description="Target keys: project"
    )
    skip_fields: list[Name] = Field(
        default_factory=list, max_length=MAX_RULE_FIELDS, description="Fields never to write"
    )

    @model_validator(mode="after")
    def _something(self) -> PreferenceThen:
        if not (self.set or self.set_target or self.skip_fields):
            raise ValueError("then: needs set, set_target or skip_fields")
        return self


class PreferenceEntry(_Entry):
    """How the org wants things done: 'tasks for legal review go to the Legal project'.

    Free text is for the prompt only. With `when`/`then` it is a rule the planner applies
    to every plan, preview and backfill preview alike (mappings/preferences.py), and it is
    kept out of the prompt: the planner already does it, deterministically.
    """

    text: Text
    person: Name | None = Field(default=None, description="The person it is about, if any")
    when: PreferenceWhen | None = None
    then: PreferenceThen | None = None

    @model_validator(mode="after")
    def _paired(self) -> PreferenceEntry:
        if self.when is not None and self.then is None:
            raise ValueError("a preference with when: needs then:")
        return self

    @property
    def is_rule(self) -> bool:
        return self.then is not None


class CommitmentEntry(_Entry):
    """An action item from an earlier meeting that a later meeting may close."""

    title: Text
    owner: Name | None = Field(default=None, description="The person's name or email")
    account: Short | None = None
    due_date: Short | None = None
    status: Literal["open", "closed"] = "open"
    meeting_id: Short | None = None
    since: datetime | None = Field(default=None, description="When its meeting started")
    op_keys: list[Short] = Field(default_factory=list, description="The ledger ops it wrote")


ENTRY_MODELS: dict[str, type[_Entry]] = {
    "person": PersonEntry,
    "term": TermEntry,
    "preference": PreferenceEntry,
    "commitment": CommitmentEntry,
}
SECTIONS: dict[str, Kind] = {
    "people": "person",
    "terms": "term",
    "preferences": "preference",
    "commitments": "commitment",
}


def label_of(kind: str, data: dict[str, Any]) -> str:
    """The entry's display name: a person's or term's name, a preference's or task's text."""
    return str(data.get("name") or data.get("title") or data.get("text") or "")
