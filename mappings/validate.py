"""Validate a mapping against its destinations' metadata and its org's connections.

`validate_against` asks each connector to `describe` the target a destination names and
checks, before anything is pushed: the place exists (object, project, section, channel),
each assigned field exists and is writable, its value's type fits, constant and mapped
picklist values are ones the org has, required fields are assigned, truncation fits the
field, and no connection belongs to another org.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from connectors.base import FieldSchema, TargetSchema
from connectors.errors import ConnectorError

from .context import ListOf, Shape, shape_at, split_path, variables_shape
from .errors import MappingError
from .spec import Assignment, Destination, Mapping
from .suggest import did_you_mean
from .templates import compile_template, is_template
from .transforms import TRANSFORMS

Describe = Callable[[str, dict[str, Any]], TargetSchema]

# Actions that only change existing records: required-on-create fields need no value.
UPDATE_ACTIONS = frozenset({"update"})

_TEXT = frozenset({"str", "date", "datetime", "number"})
_TEXT_TYPES = ("string", "textarea", "html", "email", "phone", "url", "id", "reference", "text")
_NUMBER_TYPES = ("double", "currency", "percent", "int", "integer", "long", "number")
_ACCEPTS: dict[str, frozenset[str]] = {
    **dict.fromkeys(_TEXT_TYPES, _TEXT),
    **dict.fromkeys(("picklist", "combobox", "enum"), frozenset({"str"})),
    "multipicklist": frozenset({"str", "list"}),
    "date": frozenset({"date", "str"}),
    "datetime": frozenset({"datetime", "date", "str"}),
    **dict.fromkeys(_NUMBER_TYPES, frozenset({"number"})),
    **dict.fromkeys(("boolean", "checkbox", "bool"), frozenset({"bool"})),
    "email_list": frozenset({"list"}),
    "list": frozenset({"list"}),
}
_HINTS = {
    "date": "add the `date` transform",
    "datetime": "add the `datetime` transform",
    **dict.fromkeys(_NUMBER_TYPES, "add the `number` (or `currency`) transform"),
}


def validate_against(
    mapping: Mapping,
    describe: Describe,
    *,
    connection_orgs: dict[str, str] | None = None,
) -> list[MappingError]:
    """Every problem the destinations' metadata reveals; empty when the mapping fits."""
    problems: list[MappingError] = []
    if connection_orgs is not None:
        problems.extend(check_connection_orgs(mapping, connection_orgs))
    for index, dest in enumerate(mapping.destinations):
        problems.extend(_check_destination(dest, describe, f"destinations[{index}]"))
    for problem in problems:
        problem.file = mapping.source_file
        problem.line = mapping.line_of(problem.path)
    return problems


def check_connection_orgs(mapping: Mapping, connection_orgs: dict[str, str]) -> list[MappingError]:
    """Connections the mapping's org does not have (never send data across orgs).

    Another org's connection reads exactly like one that does not exist: an org learns
    nothing about what other orgs have or who they are.
    """
    problems = []
    ours = [c for c, org in connection_orgs.items() if org == mapping.org]
    for provider, connection in mapping.connections.items():
        if connection_orgs.get(connection) != mapping.org:
            problems.append(
                MappingError(
                    f"no connection named {connection!r} in this org",
                    path=f"connections.{provider}",
                    fix=did_you_mean(connection, ours)
                    or f"use one of this org's own {provider} connections, or create one",
                )
            )
    return problems


def static_target(target: dict[str, Any]) -> dict[str, Any]:
    """The parts of a target known before any meeting: constants, not templates or paths."""
    known: dict[str, Any] = {}
    for key, value in target.items():
        constant = _constant(value)
        if constant is not _UNKNOWN:
            known[key] = constant
    return known


_UNKNOWN = object()


def _constant(value: Any) -> Any:
    if isinstance(value, Assignment):
        return _UNKNOWN
    if isinstance(value, str):
        return _UNKNOWN if is_template(value) else value
    if isinstance(value, dict):
        return static_target(value)
    if isinstance(value, list):
        items = [_constant(v) for v in value]
        return _UNKNOWN if any(i is _UNKNOWN for i in items) else items
    return value


def _check_destination(dest: Destination, describe: Describe, at: str) -> Iterator[MappingError]:
    target = static_target(dest.target)
    try:
        schema = describe(dest.connector, target)
    except ConnectorError as exc:
        yield MappingError(f"{dest.connector} cannot describe this target: {exc}", path=at)
        return
    if not schema.exists:
        yield MappingError(
            f"{dest.connector} has no such place: " + ("; ".join(schema.notes) or str(target)),
            path=f"{at}.target",
            fix=f"name a{_place(dest.connector)} that exists in the org's {dest.connector}",
        )
        return
    if not schema.fields:
        return  # the connector describes the place but not its fields: nothing more to check
    shape = variables_shape(with_item=dest.for_each == "action_items")
    assigned = set()
    for name, value in dest.fields.items():
        for field_name, field_value, path in _leaves(name, value, schema, f"{at}.fields.{name}"):
            assigned.add(field_name)
            yield from _check_field(field_name, field_value, schema, shape, path, dest)
    if dest.action not in UPDATE_ACTIONS:
        for field in schema.fields:
            if field.required and field.writable and field.name not in assigned:
                yield MappingError(
                    f"required field {field.name!r} is not assigned",
                    path=f"{at}.fields",
                    fix=f"add {field.name}: <value> under fields",
                )


def _place(connector: str) -> str:
    return {"asana": " project and section", "slack": " channel"}.get(connector, "n object")


def _leaves(
    name: str, value: Any, schema: TargetSchema, path: str
) -> Iterator[tuple[str, Any, str]]:
    """A field, or each entry of an object field the schema describes as `name.key`."""
    nested = any(f.name.startswith(f"{name}.") for f in schema.fields)
    if schema.field(name) is None and isinstance(value, dict) and nested:
        for key, entry in value.items():
            yield f"{name}.{key}", entry, f"{path}.{key}"
        return
    yield name, value, path


def _check_field(
    name: str,
    value: Any,
    schema: TargetSchema,
    shape: dict[str, Shape],
    path: str,
    dest: Destination,
) -> Iterator[MappingError]:
    field = schema.field(name)
    if field is None:
        yield MappingError(
            f"{_object(schema, dest)} has no field {name!r}",
            path=path,
            fix=did_you_mean(name, [f.name for f in schema.fields if f.writable]),
        )
        return
    if not field.writable:
        yield MappingError(f"field {name!r} is read-only", path=path, fix="remove this field")
        return
    kind = value_kind(value, shape)
    accepted = _ACCEPTS.get(field.type.lower())
    if kind is not None and accepted is not None and kind not in accepted:
        yield MappingError(
            f"field {name!r} is a {field.type} but the value is a {kind}",
            path=path,
            fix=_HINTS.get(field.type.lower(), f"give it a {field.type} value"),
        )
    yield from _check_picklist(field, value, path)
    yield from _check_length(field, value, path)


def _object(schema: TargetSchema, dest: Destination) -> str:
    place = schema.target.get("object") or schema.target.get("project")
    return str(place) if place else dest.connector


def _check_picklist(field: FieldSchema, value: Any, path: str) -> Iterator[MappingError]:
    picklist = field.picklist
    if not picklist:
        return
    if isinstance(value, str) and not is_template(value) and value not in picklist:
        yield MappingError(
            f"{value!r} is not a value of picklist {field.name!r}",
            path=path,
            fix=did_you_mean(value, picklist),
        )
    if not isinstance(value, Assignment):
        return
    for index, step in enumerate(value.transform):
        if not (isinstance(step, dict) and isinstance(step.get("map"), dict)):
            continue
        for spoken, mapped in step["map"].items():
            if mapped not in picklist:
                yield MappingError(
                    f"{spoken!r} maps to {mapped!r}, which picklist {field.name!r} does not have",
                    path=f"{path}.transform[{index}].map.{spoken}",
                    fix=did_you_mean(str(mapped), picklist),
                )


def _check_length(field: FieldSchema, value: Any, path: str) -> Iterator[MappingError]:
    if not field.length:
        return
    if isinstance(value, str) and not is_template(value) and len(value) > field.length:
        yield MappingError(
            f"{field.name!r} holds at most {field.length} characters; the value has {len(value)}",
            path=path,
        )
    if isinstance(value, Assignment):
        for index, step in enumerate(value.transform):
            limit = step.get("truncate", {}).get("max") if isinstance(step, dict) else None
            if isinstance(limit, int) and limit > field.length:
                yield MappingError(
                    f"truncates to {limit} but {field.name!r} holds at most {field.length}",
                    path=f"{path}.transform[{index}]",
                    fix=f"truncate to max: {field.length} or less",
                )


def value_kind(value: Any, shape: dict[str, Shape]) -> str | None:
    """The JSON kind a mapping value renders to, when it is known before a meeting."""
    if isinstance(value, Assignment):
        kind = _source_kind(value, shape)
        for step in value.transform:
            name = step if isinstance(step, str) else next(iter(step), None)
            transform = TRANSFORMS.get(str(name))
            if transform is not None and transform.output is not None:
                kind = _leaf(transform.output)
        return kind
    if isinstance(value, str):
        return _template_kind(value) if is_template(value) else "str"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    if value is None:
        return None
    return "date"


def _source_kind(value: Assignment, shape: dict[str, Shape]) -> str | None:
    if value.source is not None:
        return _shape_kind(shape_at(split_path(value.source), shape))
    if value.template is not None:
        return _template_kind(value.template)
    return value_kind(value.value, shape)


def _template_kind(source: str) -> str | None:
    # An expression keeps its own type, unknown until rendered; other templates are text.
    return None if compile_template(source).expression else "str"


def _shape_kind(shape: Shape) -> str | None:
    if isinstance(shape, ListOf):
        return "list"
    if isinstance(shape, dict):
        return "object"
    return _leaf(shape)


def _leaf(kind: str) -> str | None:
    if kind in ("float", "int"):
        return "number"
    return None if kind == "any" else kind
