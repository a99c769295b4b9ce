"""The mapping spec: one org's rules for turning Insights into Ops, as pydantic models.

A mapping is data (YAML) validated by these models; `mappings.schema` exports them as a
JSON Schema for editors. Values in `target` and `fields` are one of:

- a template string, rendered in a sandboxed Jinja2 environment (`"{{ meeting.title }}"`);
  a string that is exactly one `{{ expression }}` keeps the expression's type (a list
  stays a list, a number a number);
- a constant (number, boolean, date, null), or a list or mapping of values;
- an assignment: `{from: <path>, transform: [...], default: ..., write_policy: ...}`, or
  `{template: ...}` / `{value: ...}` in place of `from`.

Write policy, per field (default `always`, or the destination's `write_policy`):

- `always`: write the value whenever meetsync has one;
- `if_empty`: write only if the destination's field is empty;
- `unless_edited`: write unless a person changed the field since meetsync last wrote it.

Policies other than `always` reach the connector as `op.target["write_policy"]`, a map of
field name → policy, so a connector that reads the current record can honour them.
"""

from __future__ import annotations

import difflib
import re
from datetime import date
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    field_validator,
    model_validator,
)
from typing_extensions import TypeAliasType

from extraction.schemas import CrmFields

from .review import ReviewPolicy

WritePolicy = Literal["always", "if_empty", "unless_edited"]
ForEach = Literal["meeting", "action_items"]
OnMissing = Literal["keep", "close"]

ASSIGNMENT_KEYS = frozenset({"from", "template", "value", "transform", "default", "write_policy"})
CRM_FACTS = tuple(CrmFields.model_fields)
_LAST_STEP = re.compile(r"(\.[^.\[\]]+|\[\d+\])$")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Assignment(_Spec):
    """A value read from a path (or a template, or a constant), then transformed."""

    source: str | None = Field(
        default=None,
        alias="from",
        description="Path into the context, e.g. insights.crm.stage.value or item.owner_email",
    )
    template: str | None = Field(default=None, description="A Jinja2 template, instead of from")
    value: Any = Field(default=None, description="A constant, instead of from")
    transform: list[str | dict[str, Any]] = Field(
        default_factory=list,
        description="Transforms applied in order: a name, or {name: arguments}",
    )
    default: Any = Field(default=None, description="Used when the value comes out empty")
    write_policy: WritePolicy | None = Field(
        default=None, description="always | if_empty | unless_edited (fields only)"
    )

    @model_validator(mode="after")
    def _one_source(self) -> Assignment:
        given = [k for k in ("source", "template") if getattr(self, k) is not None]
        if "value" in self.model_fields_set:
            given.append("value")
        if len(given) > 1:
            raise ValueError("give one of from, template or value, not several")
        if not given and self.default is None:
            raise ValueError("an assignment needs from, template, value or default")
        return self


def _looks_like_assignment(raw: dict[Any, Any]) -> bool:
    # A misspelt `from:` must surface as a typo, not pass as a literal object.
    keys = {k for k in raw if isinstance(k, str)}
    if ASSIGNMENT_KEYS & keys:
        return True
    return any(
        k.islower() and difflib.get_close_matches(k, ASSIGNMENT_KEYS, n=1, cutoff=0.75)
        for k in keys
    )


def _value_kind(raw: Any) -> str:
    if isinstance(raw, Assignment):
        return "<assignment>"
    if isinstance(raw, dict):
        return "<assignment>" if _looks_like_assignment(raw) else "<dict>"
    if isinstance(raw, str):
        return "<template>"
    if isinstance(raw, list):
        return "<list>"
    return "<constant>"


Value = TypeAliasType(  # type: ignore[misc]
    "Value",
    Annotated[
        Union[  # noqa: UP007 - pydantic needs the tagged members spelled out
            Annotated[Assignment, Tag("<assignment>")],
            Annotated[str, Tag("<template>")],
            Annotated[list["Value"], Tag("<list>")],  # type: ignore[misc]
            Annotated[dict[str, "Value"], Tag("<dict>")],  # type: ignore[misc]
            Annotated[bool | int | float | date | None, Tag("<constant>")],
        ],
        Discriminator(_value_kind),
    ],
)


class When(_Spec):
    """Conditions; a destination fires only when all given conditions hold."""

    external_attendees: bool | None = Field(
        default=None, description="true: someone outside the org attended; false: internal only"
    )
    attendee_domains: list[str] | None = Field(
        default=None, description="Some attendee's email is at one of these domains"
    )
    title_matches: str | None = Field(
        default=None, description="Regex the title must match (case-insensitive search)"
    )
    title_excludes: str | None = Field(
        default=None, description="Regex the title must not match (case-insensitive search)"
    )
    min_confidence: float | None = Field(
        default=None, ge=0, le=1, description="Only action items with confidence ≥ this"
    )
    owner_internal: bool | None = Field(
        default=None, description="Only action items owned (true) / not owned (false) by the org"
    )
    has_crm: list[str] | None = Field(
        default=None, description="CRM facts the meeting must have, e.g. [stage, next_steps]"
    )

    @field_validator("title_matches", "title_excludes")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value

    @field_validator("attendee_domains")
    @classmethod
    def _domains(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            return [d.strip().lower().removeprefix("@") for d in value]
        return value

    @field_validator("has_crm")
    @classmethod
    def _facts(cls, value: list[str] | None) -> list[str] | None:
        for name in value or []:
            if name not in CRM_FACTS:
                raise ValueError(f"unknown CRM fact {name!r}; known: {', '.join(CRM_FACTS)}")
        return value


class Destination(_Spec):
    """One kind of write: which connector, which verb, where, and with what fields."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)
    connector: str = Field(description="salesforce | asana | slack | a plugin's name")
    action: str = Field(description="The connector's verb, e.g. upsert, upsert_task")
    for_each: ForEach = Field(
        default="meeting", description="meeting: one op per meeting; action_items: one per item"
    )
    when: When = Field(default_factory=When)
    target: dict[str, Value] = Field(default_factory=dict)
    fields: dict[str, Value] = Field(default_factory=dict)
    write_policy: WritePolicy = Field(
        default="always", description="Default write policy of this destination's fields"
    )
    after: list[str] = Field(
        default_factory=list,
        description="Destinations whose writes for the same meeting this one waits for and "
        "links to (a Slack recap linking the Asana tasks and Salesforce records), by preference",
    )
    on_missing: OnMissing = Field(
        default="keep",
        description="An item a re-run no longer extracts: keep its write, or close it "
        "(an Asana task completed, a Salesforce Task Completed); never deleted",
    )
    review: ReviewPolicy | None = Field(
        default=None,
        description="Writes that wait for a person's approval in Slack (mappings/review.py)",
    )

    def policy_of(self, field: str) -> WritePolicy:
        """The write policy of one field."""
        value = self.fields.get(field)
        if isinstance(value, Assignment) and value.write_policy:
            return value.write_policy
        return self.write_policy


class Mapping(_Spec):
    """One org's mapping: its connections and its destinations."""

    version: Literal[1] = 1
    org: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    connections: dict[str, str] = Field(
        default_factory=dict, description="provider → the org's connection name"
    )
    destinations: list[Destination] = Field(default_factory=list)

    # Where each YAML path sits in its file, kept for errors found after loading.
    _file: str | None = PrivateAttr(default=None)
    _lines: dict[str, int] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _unique_names(self) -> Mapping:
        seen: set[str] = set()
        for dest in self.destinations:
            if dest.name in seen:
                raise ValueError(f"two destinations are named {dest.name!r}; names must differ")
            seen.add(dest.name)
        return self

    def line_of(self, path: str) -> int | None:
        """The line of a YAML path, or of its nearest parent the loader saw."""
        while True:
            if path in self._lines:
                return self._lines[path]
            parent = _LAST_STEP.sub("", path)
            if parent == path:
                return None
            path = parent

    @property
    def source_file(self) -> str | None:
        """The file the mapping was loaded from, if any."""
        return self._file
