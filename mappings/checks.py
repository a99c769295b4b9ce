"""Static checks of a parsed mapping: connections, verbs, templates, paths and transforms.

These need nothing but the mapping and the installed connectors' facts (their verbs), so
the loader runs them on every load; checks against a live destination's metadata live in
`mappings.validate`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from connectors.registry import facts

from .context import Shape, path_problem, variables_shape
from .errors import MappingError
from .review import problems as review_problems
from .spec import Assignment, Destination, Mapping
from .suggest import did_you_mean
from .templates import is_template, template_problems
from .transforms import parse_step

_ITEM_ONLY = "`item` exists only in destinations with for_each: action_items"


def check_mapping(mapping: Mapping) -> list[MappingError]:
    """Every static problem of a mapping, each located by its YAML path and line."""
    problems: list[MappingError] = []
    for index, dest in enumerate(mapping.destinations):
        problems.extend(_check_destination(mapping, dest, f"destinations[{index}]"))
    for problem in problems:
        problem.file = mapping.source_file
        problem.line = mapping.line_of(problem.path)
    return problems


def _check_destination(mapping: Mapping, dest: Destination, at: str) -> Iterator[MappingError]:
    if dest.connector not in mapping.connections:
        yield MappingError(
            f"connector {dest.connector!r} has no connection in this mapping",
            path=f"{at}.connector",
            fix=f"add `{dest.connector}: <connection name>` under connections",
        )
    # the connector's own verbs; a connector that names none (a plugin) accepts any
    known = facts(dest.connector).actions
    if known and dest.action not in known:
        yield MappingError(
            f"{dest.connector} has no action {dest.action!r}",
            path=f"{at}.action",
            fix=did_you_mean(dest.action, known),
        )
    yield from _check_after(mapping, dest, at)
    yield from review_problems(dest.review, dest.fields, at)
    with_item = dest.for_each == "action_items"
    shape = variables_shape(with_item=with_item)
    for part in ("target", "fields"):
        for key, value in getattr(dest, part).items():
            yield from _check_value(value, f"{at}.{part}.{key}", shape, with_item, part)


def _check_after(mapping: Mapping, dest: Destination, at: str) -> Iterator[MappingError]:
    by_name = {d.name: d for d in mapping.destinations}
    for index, name in enumerate(dest.after):
        other = by_name.get(name)
        if other is None or other is dest:
            problem = "itself" if other is dest else f"no destination {name!r}"
            yield MappingError(
                f"after names {problem}",
                path=f"{at}.after[{index}]",
                fix=did_you_mean(name, [d for d in by_name if d != dest.name]),
            )
        elif other.after:
            # one level only: a chain would let one slow write hold up a line of others
            yield MappingError(
                f"after names {name!r}, which itself waits for others",
                path=f"{at}.after[{index}]",
                fix=f"wait for what {name!r} waits for directly, or drop its after",
            )


def _check_value(
    value: Any, at: str, shape: dict[str, Shape], with_item: bool, part: str
) -> Iterator[MappingError]:
    if isinstance(value, str) and is_template(value):
        yield from _template(value, at, shape, with_item)
    elif isinstance(value, Assignment):
        yield from _assignment(value, at, shape, with_item, part)
    elif isinstance(value, list):
        for index, entry in enumerate(value):
            yield from _check_value(entry, f"{at}[{index}]", shape, with_item, part)
    elif isinstance(value, dict):
        for key, entry in value.items():
            yield from _check_value(entry, f"{at}.{key}", shape, with_item, part)


def _template(
    source: str, at: str, shape: dict[str, Shape], with_item: bool
) -> Iterator[MappingError]:
    for problem in template_problems(source, shape):
        message, hint = _split(problem)
        yield MappingError(message, path=at, fix=_item_fix(problem, with_item) or hint)


def _split(problem: str) -> tuple[str, str | None]:
    """'x has no y; did you mean z?' → the problem and its fix."""
    message, _, hint = problem.partition("; ")
    return message, hint or None


def _item_fix(problem: str, with_item: bool) -> str | None:
    if not with_item and "no 'item'" in problem:
        return _ITEM_ONLY
    if "does not compile" in problem:
        return "check the braces: {{ expression }} and {% tag %}"
    return None


def _assignment(
    value: Assignment, at: str, shape: dict[str, Shape], with_item: bool, part: str
) -> Iterator[MappingError]:
    if value.source is not None:
        problem = path_problem(value.source, shape)
        if problem:
            message, hint = _split(problem)
            fix = _item_fix(problem, with_item) or hint
            yield MappingError(message, path=f"{at}.from", fix=fix)
    if value.template is not None:
        yield from _template(value.template, f"{at}.template", shape, with_item)
    for index, raw in enumerate(value.transform):
        try:
            parse_step(raw)
        except ValueError as exc:
            message, hint = _split(str(exc))
            fix = _transform_fix(raw) or hint
            yield MappingError(message, path=f"{at}.transform[{index}]", fix=fix)
    if value.write_policy is not None and part != "fields":
        yield MappingError(
            "write_policy applies to fields, not to the target",
            path=f"{at}.write_policy",
            fix="move write_policy to the field it should govern",
        )


def _transform_fix(raw: Any) -> str | None:
    if isinstance(raw, dict) and "map" in raw:
        return "map every spoken value to a value the destination's picklist has"
    return None
