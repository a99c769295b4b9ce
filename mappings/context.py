"""What templates and `from:` paths can read: the context, and its shape for checking.

Variables: `meeting` (the MeetingOutput without its transcript, plus `url`, `local_date`
and derived attendee lists), `insights`, `crm` (insights.crm, every fact present even
when null) and, for `for_each: action_items`, `item`.
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Union

from pydantic import BaseModel

from extraction.schemas import ActionItem, CrmFields, DateFact, Insights
from meetsync.models import Attendee, CrmRefs, MeetingOutput

from .suggest import did_you_mean


@dataclass(frozen=True)
class ListOf:
    """The shape of a list whose elements have `item` shape."""

    item: Shape


# A leaf kind ("str", "float", "int", "bool", "date", "datetime", "any"), an object of
# named shapes, or a list.
Shape = Union[str, dict[str, "Shape"], ListOf]  # noqa: UP007 - recursive alias

# Strings the models carry that hold dates, so type checks can tell a date from text.
_DATE_FIELDS = {(ActionItem, "due_date"), (DateFact, "value")}
_LEAF_KINDS = {str: "str", float: "float", int: "int", bool: "bool", date: "date"}
_LEAF_KINDS[datetime] = "datetime"
_STEP = re.compile(r"[^.\[\]]+|\[\d+\]")
_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*|\[\d+\])*")


def _annotation_shape(owner: type[BaseModel], name: str, annotation: Any) -> Shape:
    if (owner, name) in _DATE_FIELDS:
        return "date"
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        return _annotation_shape(owner, name, args[0]) if len(args) == 1 else "any"
    if origin is list:
        return ListOf(_annotation_shape(owner, name, args[0]) if args else "any")
    if origin is typing.Literal:
        return "str"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return model_shape(annotation)
    if origin is dict:
        return "any"
    return _LEAF_KINDS.get(annotation, "any") if isinstance(annotation, type) else "any"


def model_shape(model: type[BaseModel], *, exclude: frozenset[str] = frozenset()) -> Shape:
    """The shape of a pydantic model's dump."""
    return {
        name: _annotation_shape(model, name, info.annotation)
        for name, info in model.model_fields.items()
        if name not in exclude
    }


def _meeting_shape() -> dict[str, Shape]:
    shape = model_shape(MeetingOutput, exclude=frozenset({"transcript"}))
    assert isinstance(shape, dict)
    attendee = model_shape(Attendee)
    shape |= {
        "crm": model_shape(CrmRefs),
        "url": "str",
        "local_date": "date",
        "duration_minutes": "int",
        "host_email": "str",
        "external_attendees": ListOf(attendee),
        "internal_attendees": ListOf(attendee),
        "external_emails": ListOf("str"),
        "internal_emails": ListOf("str"),
        "external_domains": ListOf("str"),
    }
    return shape


def _item_shape() -> dict[str, Shape]:
    shape = model_shape(ActionItem)
    assert isinstance(shape, dict)
    return shape | {"owner_internal": "bool"}


def variables_shape(*, with_item: bool) -> dict[str, Shape]:
    """The shape of every variable a template may read."""
    item = _item_shape()
    insights = model_shape(Insights)
    assert isinstance(insights, dict)
    insights |= {"action_items": ListOf(item), "crm": model_shape(CrmFields)}
    shape: dict[str, Shape] = {
        "meeting": _meeting_shape(),
        "insights": insights,
        "crm": model_shape(CrmFields),
    }
    if with_item:
        shape["item"] = item
    return shape


def split_path(path: str) -> list[str | int]:
    """`insights.action_items[0].title` → ["insights", "action_items", 0, "title"]."""
    steps: list[str | int] = []
    for token in _STEP.findall(path):
        steps.append(int(token[1:-1]) if token.startswith("[") else token)
    return steps


def path_problem(path: str, shape: dict[str, Shape]) -> str | None:
    """Why a path cannot be read in a context of this shape, or None if it can."""
    if not _PATH.fullmatch(path):
        return f"{path!r} is not a path like meeting.title or item.owner_email"
    steps = split_path(path)
    return steps_problem(steps, shape)


def _dotted(steps: list[str]) -> str:
    return "".join(s if s.startswith("[") or i == 0 else f".{s}" for i, s in enumerate(steps))


def steps_problem(steps: list[str | int], shape: dict[str, Shape]) -> str | None:
    """Why a list of attribute/index steps cannot be read, or None if it can."""
    here: Shape = shape
    walked: list[str] = []
    for step in steps:
        if isinstance(here, ListOf):
            here = here.item
            if isinstance(step, int):
                walked.append(f"[{step}]")
                continue
            name = _dotted(walked)
            return f"{name} is a list; index it (e.g. {name}[0]) or use a transform"
        if isinstance(step, int):
            if here == "any":
                return None
            return f"{'.'.join(walked) or 'this'} is not a list"
        if isinstance(here, dict):
            if step not in here:
                where = _dotted(walked) or "the context"
                hint = did_you_mean(step, here) or ""
                return f"{where} has no {step!r}" + (f"; {hint}" if hint else "")
            here = here[step]
            walked.append(step)
            continue
        if here == "any":
            return None
        return f"{'.'.join(walked)} is a {here}, it has no {step!r}"
    return None


def shape_at(steps: list[str | int], shape: dict[str, Shape]) -> Shape:
    """The shape a valid path leads to."""
    here: Shape = shape
    for step in steps:
        if isinstance(here, ListOf):
            here = here.item
        elif isinstance(here, dict) and isinstance(step, str):
            here = here.get(step, "any")
        else:
            return "any"
    return here


def resolve(context: dict[str, Any], path: str) -> Any:
    """The value at a path, or None where any step along it is missing."""
    here: Any = context
    for step in split_path(path):
        if here is None:
            return None
        if isinstance(step, int):
            here = here[step] if isinstance(here, list) and -len(here) <= step < len(here) else None
        elif isinstance(here, dict):
            here = here.get(step)
        else:
            here = getattr(here, step, None)
    return here


def meeting_context(meeting: MeetingOutput, *, meeting_url: str) -> dict[str, Any]:
    """The `meeting` variable: the meeting's fields, its url and derived attendee lists."""
    data = meeting.model_dump(exclude={"transcript"})
    data["crm"] = (meeting.crm or CrmRefs()).model_dump()
    external = [a.model_dump() for a in meeting.attendees if not a.internal]
    internal = [a.model_dump() for a in meeting.attendees if a.internal]
    data |= {
        "url": meeting_url,
        "local_date": meeting.local_date,
        "duration_minutes": round((meeting.end - meeting.start).total_seconds() / 60),
        "host_email": next((a["email"] for a in internal if a["email"]), None),
        "external_attendees": external,
        "internal_attendees": internal,
        "external_emails": [a["email"] for a in external if a["email"]],
        "internal_emails": [a["email"] for a in internal if a["email"]],
        "external_domains": sorted(
            {a["email"].rsplit("@", 1)[1].lower() for a in external if a["email"]}
        ),
    }
    return data


def item_context(item: ActionItem, meeting: MeetingOutput) -> dict[str, Any]:
    """One action item as templates see it, with whether its owner is one of the org."""
    return item.model_dump() | {"owner_internal": owner_is_internal(item, meeting)}


def owner_is_internal(item: ActionItem, meeting: MeetingOutput) -> bool:
    """True when the item's owner is an internal attendee (by email, else by name)."""
    if item.owner_email:
        wanted = item.owner_email.lower()
        return any(a.internal and (a.email or "").lower() == wanted for a in meeting.attendees)
    person = meeting.attendee_by_name(item.owner) if item.owner else None
    return bool(person and person.internal)


def insights_context(
    insights: Insights, items: list[ActionItem], meeting: MeetingOutput
) -> dict[str, Any]:
    """The `insights` variable, with the action items a destination's conditions kept."""
    data = insights.model_dump(exclude={"action_items", "crm"})
    data["action_items"] = [item_context(i, meeting) for i in items]
    data["crm"] = crm_context(insights)
    return data


def crm_context(insights: Insights) -> dict[str, Any]:
    """The `crm` variable: every CRM fact, null where the meeting did not state it."""
    crm = insights.crm or CrmFields.model_validate(dict.fromkeys(CrmFields.model_fields))
    return crm.model_dump()
