"""Load a mapping from YAML, collecting every problem with its path, line and fix."""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .checks import check_mapping
from .errors import MappingError
from .spec import Assignment, Mapping
from .suggest import did_you_mean

_CONSTANT_MEMBERS = {"bool", "int", "float", "date", "none"}


def load_mapping(source: Path | str) -> Mapping:
    """A checked Mapping from a YAML file path or YAML text; raises MappingError."""
    file, text = _read(source)
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise MappingError(
            f"YAML syntax error: {exc.problem or exc.context}",
            file=file,
            line=mark.line + 1 if mark else None,
            fix="check indentation, colons and quotes around this line",
        ) from exc
    except yaml.YAMLError as exc:
        raise MappingError(f"YAML error: {exc}", file=file) from exc
    if node is None or not isinstance(data, dict):
        raise MappingError(
            "a mapping file must be a YAML mapping with org, connections and destinations",
            file=file,
            line=1,
        )
    lines: dict[str, int] = {}
    problems = _walk(node, "", lines) + _duplicate_names(data, lines)
    mapping = _validate(data, lines, file, problems)
    mapping._file = file
    mapping._lines = lines
    problems.extend(check_mapping(mapping))
    if problems:
        for problem in problems:
            problem.file = file
        raise MappingError.collect(_ordered(problems))
    return mapping


def _read(source: Path | str) -> tuple[str | None, str]:
    if isinstance(source, str) and "\n" not in source and source.endswith((".yaml", ".yml")):
        source = Path(source)
    if isinstance(source, Path):
        try:
            return str(source), source.read_text(encoding="utf-8")
        except OSError as exc:
            message = f"cannot read the mapping: {exc.strerror}"
            raise MappingError(message, file=str(source)) from exc
    return None, source


def _walk(node: yaml.Node, path: str, lines: dict[str, int]) -> list[MappingError]:
    """Record the line of every YAML path and report keys given twice."""
    problems: list[MappingError] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = f"{path}.{key}" if path else key
            if key in seen:
                problems.append(
                    MappingError(
                        f"key {key!r} is given twice; YAML would keep only the last",
                        path=child,
                        line=key_node.start_mark.line + 1,
                        fix="remove or merge one of them",
                    )
                )
            seen.add(key)
            lines.setdefault(child, key_node.start_mark.line + 1)
            problems.extend(_walk(value_node, child, lines))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = f"{path}[{index}]"
            lines.setdefault(child, item.start_mark.line + 1)
            problems.extend(_walk(item, child, lines))
    return problems


def _duplicate_names(data: dict[str, Any], lines: dict[str, int]) -> list[MappingError]:
    """Destinations sharing a name, located at the later one (the spec only says that)."""
    destinations = data.get("destinations")
    if not isinstance(destinations, list):
        return []
    problems: list[MappingError] = []
    first: dict[str, str] = {}
    for index, dest in enumerate(destinations):
        name = dest.get("name") if isinstance(dest, dict) else None
        if not isinstance(name, str):
            continue
        if name in first:
            path = f"destinations[{index}].name"
            problems.append(
                MappingError(
                    f"two destinations are named {name!r} ({first[name]} and this one)",
                    path=path,
                    line=lines.get(path),
                    fix="give each destination its own name; op keys are built from it",
                )
            )
        else:
            first[name] = f"destinations[{index}]"
    return problems


def _validate(
    data: dict[str, Any], lines: dict[str, int], file: str | None, problems: list[MappingError]
) -> Mapping:
    try:
        mapping = Mapping.model_validate(data)
    except ValidationError as exc:
        problems.extend(_from_pydantic(exc, lines, file))
        raise MappingError.collect(_ordered(_located(problems, file))) from None
    if problems:
        raise MappingError.collect(_ordered(_located(problems, file)))
    return mapping


def _ordered(problems: list[MappingError]) -> list[MappingError]:
    return sorted(problems, key=lambda p: p.line or 0)


def _located(problems: list[MappingError], file: str | None) -> list[MappingError]:
    for problem in problems:
        problem.file = file
    return problems


def _from_pydantic(
    exc: ValidationError, lines: dict[str, int], file: str | None
) -> list[MappingError]:
    problems: list[MappingError] = []
    seen: set[str] = set()
    for error in exc.errors():
        loc = error["loc"]
        if not loc and "two destinations are named" in str(error["msg"]):
            continue  # reported with its line by _duplicate_names
        path = _path(loc)
        message, fix = _explain(error, loc)
        if (path, message) in seen or f"{path}:union" in seen:
            continue
        if _is_constant_member(loc):
            seen.add(f"{path}:union")
            message = "expected text, a number, true/false, a date, a list or an object"
        seen.add((path, message))  # type: ignore[arg-type]
        line = _line(lines, path)
        problems.append(MappingError(message, path=path, line=line, file=file, fix=fix))
    return problems


def _is_constant_member(loc: tuple[Any, ...]) -> bool:
    return "<constant>" in loc and str(loc[-1]) in _CONSTANT_MEMBERS


def _path(loc: tuple[Any, ...]) -> str:
    path = ""
    for index, step in enumerate(loc):
        if isinstance(step, int):
            path += f"[{step}]"
        elif step.startswith("<") or (index and loc[index - 1] == "<constant>"):
            continue  # a union member's tag, not a key of the YAML
        else:
            path += f".{step}" if path else step
    return path


def _line(lines: dict[str, int], path: str) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        parent = re.sub(r"(\.[^.\[\]]+|\[\d+\])$", "", path)
        if parent == path:
            break
        path = parent
    return None


def _explain(error: Any, loc: tuple[Any, ...]) -> tuple[str, str | None]:
    kind, message = error["type"], str(error["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = _allowed_keys(loc[:-1])
        return f"unknown key {key!r}", did_you_mean(key, allowed) if allowed else None
    if kind == "missing":
        return f"required key {loc[-1]!r} is missing", f"add {loc[-1]}: <value>"
    if kind == "literal_error":
        expected = re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))
        given = error.get("input")
        fix = did_you_mean(str(given), expected) if isinstance(given, str) else None
        return f"{given!r} is not allowed here: {message}", fix
    return message, None


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the model at a location accepts, by their YAML names."""
    model: type[BaseModel] | None = Mapping
    for step in loc:
        if step == "<assignment>":
            model = Assignment
        elif isinstance(step, int) or (isinstance(step, str) and step.startswith("<")):
            continue
        elif model is not None:
            fields = {(f.alias or n): f for n, f in model.model_fields.items()}
            model = _inner_model(fields[step].annotation) if step in fields else None
    if model is None:
        return []
    return [(f.alias or n) for n, f in model.model_fields.items()]


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) is dict:
        return None  # a map of names to values: its keys are the admin's, not ours
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None
