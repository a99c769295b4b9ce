"""The engine: a meeting, its Insights and the org's Mapping in; the Ops to push out.

`plan_ops` is pure and deterministic: the same inputs give the same ops, keys and payload
hashes on every run. Fields whose value comes out empty are left out of the op, so a
missing fact never blanks a value already in the destination; an op left with no fields
at all is not planned.
"""

from __future__ import annotations

from collections.abc import Mapping as KeyMap
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from connectors.base import Op
from extraction.schemas import ActionItem, Insights
from meetsync.models import MeetingOutput

from .conditions import items_passing, meeting_passes
from .context import crm_context, insights_context, item_context, meeting_context, resolve
from .errors import PlanError
from .keys import item_key, meeting_key
from .spec import Assignment, Destination, Mapping
from .templates import compile_template, is_template
from .transforms import TransformContext, apply_steps, is_empty, parse_step


@dataclass(frozen=True)
class PlannedOp:
    """One planned op with what it was planned for: its destination and action item."""

    destination: str
    item: ActionItem | None
    op: Op


def plan_ops(
    meeting: MeetingOutput,
    insights: Insights,
    mapping: Mapping,
    *,
    meeting_url: str,
    renames: KeyMap[str, str] | None = None,
) -> list[Op]:
    """Every op the mapping asks for this meeting, in destination then item order."""
    planned = plan_items(meeting, insights, mapping, meeting_url=meeting_url, renames=renames)
    return [p.op for p in planned]


def plan_items(
    meeting: MeetingOutput,
    insights: Insights,
    mapping: Mapping,
    *,
    meeting_url: str,
    renames: KeyMap[str, str] | None = None,
) -> list[PlannedOp]:
    """`plan_ops` with each op's destination and item, for matching items across re-runs.

    `renames` maps an op key to the key the ledger already knows the same item by (a
    re-worded item, see mappings/identity.py); it is applied here, where keys are made, so
    the ops that wait for a renamed op (`target.after`) name it by its kept key too.
    """
    renames = renames or {}
    if meeting.org_id != mapping.org:
        raise PlanError(f"meeting of org {meeting.org_id!r} given the mapping of {mapping.org!r}")
    base = {"meeting": meeting_context(meeting, meeting_url=meeting_url)}
    base["crm"] = crm_context(insights)
    planned: dict[str, list[tuple[ActionItem | None, Op]]] = {}
    # Destinations with `after` go second: their ops name the ops they wait for.
    for dest in sorted(mapping.destinations, key=lambda d: bool(d.after)):
        planned[dest.name] = []
        if not meeting_passes(dest.when, meeting, insights):
            continue
        waits = _waits_for(dest, planned)
        items = items_passing(dest.when, meeting, insights.action_items)
        context = base | {"insights": insights_context(insights, items, meeting)}
        if dest.for_each == "meeting":
            op = _plan_one(dest, mapping, meeting, context, meeting_key(dest.name), waits)
            planned[dest.name].append((None, _renamed(op, renames)))
            continue
        seen: set[str] = set()
        for item in items:
            key = item_key(dest.name, item)
            if key in seen:
                continue  # the same item said twice: one write, the first wins
            seen.add(key)
            item_ctx = context | {"item": item_context(item, meeting)}
            op = _plan_one(dest, mapping, meeting, item_ctx, key, waits)
            planned[dest.name].append((item, _renamed(op, renames)))
    made = [
        PlannedOp(dest.name, item, op)
        for dest in mapping.destinations
        for item, op in planned[dest.name]
    ]
    _check_unique([p.op for p in made])
    # An op with no field to write (an update when the meeting stated no CRM fact) is noise.
    return [p for p in made if p.op.fields]


def _renamed(op: Op, renames: KeyMap[str, str]) -> Op:
    # the key is not part of the payload hash: a renamed op writes what it would have
    key = renames.get(op.key)
    return op if key is None else op.model_copy(update={"key": key})


def _waits_for(
    dest: Destination, planned: dict[str, list[tuple[ActionItem | None, Op]]]
) -> list[dict[str, Any]]:
    """`target.after` of a destination's ops: the ops it links to, in the mapping's order.

    Each entry names the op's key, its destination and, for a per-item op, the item's title
    and owner, so the push can put each receipt's link on the right line of a recap.
    """
    return [
        {
            "key": op.key,
            "destination": name,
            "connector": op.connector,
            "title": item.title if item else None,
            "owner_email": item.owner_email if item else None,
        }
        for name in dest.after
        for item, op in planned.get(name, [])
        if op.fields  # an op that is not planned leaves no receipt to wait for
    ]


def _plan_one(
    dest: Destination,
    mapping: Mapping,
    meeting: MeetingOutput,
    context: dict[str, Any],
    key: str,
    waits: list[dict[str, Any]],
) -> Op:
    connection = mapping.connections.get(dest.connector)
    if connection is None:
        raise PlanError(f"destination {dest.name!r}: no connection for {dest.connector!r}")
    tctx = TransformContext(timezone=meeting.timezone)
    try:
        target = {k: render(v, context, tctx) for k, v in dest.target.items()}
        fields = {}
        for name, value in dest.fields.items():
            rendered = _prune(render(value, context, tctx))
            if not is_empty(rendered):
                fields[name] = rendered
    except PlanError as exc:
        raise PlanError(f"destination {dest.name!r}: {exc}") from exc
    policies = {f: dest.policy_of(f) for f in fields if dest.policy_of(f) != "always"}
    if policies:
        target["write_policy"] = policies
    if waits:
        target["after"] = waits
    return Op.plan(
        org_id=mapping.org,
        meeting_id=meeting.meeting_id,
        connector=dest.connector,
        connection=connection,
        action=dest.action,
        item_key=key,
        target=target,
        fields=fields,
    )


def render(value: Any, context: dict[str, Any], tctx: TransformContext) -> Any:
    """A mapping value rendered to JSON types; empty parts of lists and objects dropped."""
    if isinstance(value, Assignment):
        return _assign(value, context, tctx)
    if isinstance(value, str):
        return _template(value, context) if is_template(value) else value
    if isinstance(value, list):
        rendered = (render(v, context, tctx) for v in value)
        return [v for v in rendered if not is_empty(v)]
    if isinstance(value, dict):
        return {k: render(v, context, tctx) for k, v in value.items()}
    return to_json(value)


def _assign(value: Assignment, context: dict[str, Any], tctx: TransformContext) -> Any:
    if value.source is not None:
        raw = resolve(context, value.source)
    elif value.template is not None:
        raw = _template(value.template, context)
    else:
        raw = value.value
    try:
        steps = [parse_step(s) for s in value.transform]
    except ValueError as exc:
        raise PlanError(str(exc)) from exc
    result = to_json(apply_steps(to_json(raw), steps, tctx))
    if is_empty(result) and value.default is not None:
        return to_json(value.default)
    return result


def _template(source: str, context: dict[str, Any]) -> Any:
    try:
        return to_json(compile_template(source).render(context))
    except Exception as exc:  # a sandbox refusal or a type error in the admin's template
        raise PlanError(f"template {source!r} failed: {exc}") from exc


def _prune(value: Any) -> Any:
    # An empty entry of a field's object (a custom field) must not blank it either; records
    # inside lists (a Slack recap's items) keep their shape, nulls included.
    if isinstance(value, dict):
        return {k: v for k, v in ((k, _prune(v)) for k, v in value.items()) if not is_empty(v)}
    return value


def to_json(value: Any) -> Any:
    """Dates as ISO strings, decimals as floats, tuples as lists, text without edge blanks."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if hasattr(value, "model_dump"):
        return to_json(value.model_dump())
    return value


def _check_unique(ops: list[Op]) -> None:
    seen: dict[str, Op] = {}
    for op in ops:
        if op.key in seen:
            raise PlanError(f"two ops share the key {op.key}; give destinations distinct names")
        seen[op.key] = op


__all__ = ["PlannedOp", "plan_items", "plan_ops", "render", "to_json"]
