"""Review policies: which planned writes wait for a person, who may decide, for how long.

A destination may carry `review:`

```yaml
review:
  mode: approve                   # auto | approve | never: the default of every field
  fields: {StageName: approve, NextStep: auto}
  when:                           # any condition that holds asks; none given: always ask
    confidence_below: 0.8         # the action item's confidence (CRM facts carry none)
    has_value: true               # the field already holds another value in the destination
    stage_backwards: true         # a picklist value earlier than the current one
    amount_change_pct: 20         # a number moving by more than 20 %
  approvers: [host, item_owner, record_owner, dana@acme.io, "@deal-desk"]
  post_to: dm                     # dm: each approver; or a channel, "#deal-desk"
  expire_after: 24h               # then recorded as skipped
  remind_after: 4h                # optional: one reminder in the message's thread
  ambiguous_owner: ask            # ask the approver to pick the owner, or leave unassigned
```

`auto` writes without asking; `approve` holds the whole op (one op is one write) in the
ledger as `awaiting_review` until a person approves, edits or skips it; `never` drops the
field from the op: meetsync proposes it in the review message only. Conditions that need the
destination's record (`has_value`, `stage_backwards`, `amount_change_pct`) are evaluated when
the review message is prepared; an op none of whose conditions hold is released unasked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .errors import MappingError

ReviewMode = Literal["auto", "approve", "never"]
ROLES = ("host", "item_owner", "record_owner")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_GROUP = re.compile(r"^@[a-z0-9][a-z0-9._-]*$")


def seconds(value: Any) -> float:
    """A duration, `90`, `"90s"`, `"30m"`, `"24h"` or `"2d"`, in seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text like 30m, 24h, 2d")
    if isinstance(value, int | float):
        return float(value)
    found = _DURATION.match(str(value))
    if found is None:
        raise ValueError(f"{value!r} is not a duration; write 90s, 30m, 24h or 2d")
    return float(found.group(1)) * _UNITS[found.group(2)]


class _Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReviewWhen(_Policy):
    """Conditions under which an `approve` field asks; with none, it always asks."""

    confidence_below: float | None = Field(
        default=None, ge=0, le=1, description="Ask when an action item's confidence is below"
    )
    has_value: bool | None = Field(
        default=None, description="Ask when the destination's field already holds a value"
    )
    stage_backwards: bool | None = Field(
        default=None, description="Ask when a picklist value moves back (a stage regresses)"
    )
    amount_change_pct: float | None = Field(
        default=None, gt=0, description="Ask when a number changes by more than this percent"
    )

    @property
    def given(self) -> bool:
        return any(v is not None for v in self.model_dump().values())


class ReviewPolicy(_Policy):
    """Who approves a destination's writes, which fields, when, and for how long."""

    mode: ReviewMode = Field(default="approve", description="auto | approve | never")
    fields: dict[str, ReviewMode] = Field(
        default_factory=dict, description="Per field: auto | approve | never"
    )
    when: ReviewWhen = Field(default_factory=ReviewWhen)
    approvers: list[str] = Field(
        default_factory=lambda: ["host"],
        min_length=1,
        description="host | item_owner | record_owner | an email | @a-slack-user-group",
    )
    post_to: str = Field(default="dm", description="dm (each approver) or a #channel")
    expire_after: float | str = Field(default="24h", description="e.g. 30m, 24h, 2d")
    remind_after: float | str | None = Field(default=None, description="e.g. 4h; none: no")
    ambiguous_owner: Literal["ask", "unassigned"] = Field(
        default="unassigned",
        description="An owner two attendees could be (or a name without email): ask the "
        "approver to pick, or leave the item unassigned",
    )

    @field_validator("expire_after", "remind_after")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if value is not None:
            seconds(value)
        return value

    @field_validator("approvers")
    @classmethod
    def _approvers(cls, value: list[str]) -> list[str]:
        for who in value:
            if who not in ROLES and not _EMAIL.match(who) and not _GROUP.match(who):
                raise ValueError(
                    f"unknown approver {who!r}: use {', '.join(ROLES)}, an email or @a-group"
                )
        return value

    def mode_of(self, field: str) -> ReviewMode:
        return self.fields.get(field, self.mode)

    def held_fields(self, fields: Mapping[str, Any]) -> list[str]:
        """The op's fields that may wait for a person (`approve`)."""
        return [name for name in fields if self.mode_of(name) == "approve"]

    def dropped_fields(self, fields: Mapping[str, Any]) -> list[str]:
        """The op's fields meetsync never writes (`never`): proposed only."""
        return [name for name in fields if self.mode_of(name) == "never"]

    @property
    def expiry_s(self) -> float:
        return seconds(self.expire_after)

    @property
    def reminder_s(self) -> float | None:
        return None if self.remind_after is None else seconds(self.remind_after)

    @property
    def to_channel(self) -> str | None:
        """The channel review messages go to; None: a DM to each approver."""
        return None if self.post_to == "dm" else self.post_to


@dataclass(frozen=True)
class FieldFacts:
    """What is known of one field when deciding whether to ask: now, proposed, its kind."""

    name: str
    proposed: Any
    current: Any = None
    confidence: float | None = None
    picklist: Sequence[str] = ()


def reasons(policy: ReviewPolicy, facts: FieldFacts) -> list[str]:
    """Why this field needs a person (empty: it does not), in words for the review message."""
    if policy.mode_of(facts.name) != "approve" or _same(facts.current, facts.proposed):
        return []
    when = policy.when
    if not when.given:
        return ["approval required"]
    found: list[str] = []
    if (
        when.confidence_below is not None
        and facts.confidence is not None
        and facts.confidence < when.confidence_below
    ):
        found.append(f"confidence {facts.confidence:.2f} < {when.confidence_below:g}")
    if when.has_value and not _blank(facts.current):
        found.append("replaces a value")
    if when.stage_backwards and _backwards(facts):
        found.append("moves back a stage")
    if when.amount_change_pct is not None:
        change = _change_pct(facts.current, facts.proposed)
        if change is not None and change > when.amount_change_pct:
            found.append(f"changes by {change:.0f}%")
    return found


def problems(
    policy: ReviewPolicy | None, fields: Mapping[str, Any], at: str
) -> Iterator[MappingError]:
    """A review policy's mistakes a schema cannot see: fields the destination never writes."""
    if policy is None:
        return
    for name in policy.fields:
        if name not in fields:
            known = ", ".join(sorted(fields)) or "none"
            yield MappingError(
                f"review names field {name!r}, which this destination does not write",
                path=f"{at}.review.fields.{name}",
                fix=f"one of: {known}",
            )
    if policy.reminder_s is not None and policy.reminder_s >= policy.expiry_s:
        yield MappingError(
            "the reminder would come after the request expires",
            path=f"{at}.review.remind_after",
            fix="make remind_after shorter than expire_after",
        )


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict) and not value)


def _same(current: Any, proposed: Any) -> bool:
    numbers = _number(current), _number(proposed)
    if None not in numbers:
        return numbers[0] == numbers[1]
    return bool(current == proposed)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _backwards(facts: FieldFacts) -> bool:
    order = list(facts.picklist)
    if facts.current not in order or facts.proposed not in order:
        return False
    return order.index(facts.proposed) < order.index(facts.current)


def _change_pct(current: Any, proposed: Any) -> float | None:
    before, after = _number(current), _number(proposed)
    if before is None or after is None or before == 0:
        return None
    return abs(after - before) / abs(before) * 100


def owner_choices(
    owner: str | None,
    owner_email: str | None,
    evidence: str,
    attendees: Sequence[Any],
) -> list[dict[str, str]]:
    """The people an item's owner could be, when that is not clear; [] when it is.

    Unclear: the quote names the owner by a first name two attendees share (and not by the
    full name), or the owner has a name but no email. `attendees` are `meetsync.models`
    Attendees (name, email, internal).
    """
    if not owner:
        return []
    with_email = [a for a in attendees if a.email and a.name]
    first = owner.split()[0].lower()
    said = re.findall(r"[\w'-]+", evidence.lower())
    namesakes = [a for a in with_email if a.name.split()[0].lower() == first]
    if len(namesakes) >= 2 and first in said and owner.lower() not in evidence.lower():
        return [_choice(a) for a in namesakes]
    if owner_email is None:
        return [_choice(a) for a in with_email if a.internal]
    return []


def owner_field(fields: Mapping[str, Any]) -> str | None:
    """The destination field that takes the item's owner (`from: item.owner_email`)."""
    for name, value in fields.items():
        if getattr(value, "source", None) == "item.owner_email":
            return name
    return None


def _choice(attendee: Any) -> dict[str, str]:
    return {"label": f"{attendee.name} ({attendee.email})", "value": str(attendee.email)}
