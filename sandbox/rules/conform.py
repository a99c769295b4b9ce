"""Shapes a candidate answer to a JSON schema so the reply always validates against it.

Only the subset strict structured outputs allow: object, array, string (enum), number,
integer, boolean, null, anyOf, $ref into $defs. Unknown keys are dropped, missing required
keys are filled with null where allowed and with an empty value otherwise.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def _resolve(schema: Schema, root: Schema) -> Schema:
    while "$ref" in schema:
        path = schema["$ref"].lstrip("#/").split("/")
        target: Any = root
        for part in path:
            target = target[part]
        schema = target
    return schema


def _types(schema: Schema) -> list[str]:
    kind = schema.get("type")
    if isinstance(kind, list):
        return kind
    if kind:
        return [kind]
    if "enum" in schema:
        return ["string"]
    if "properties" in schema:
        return ["object"]
    return []


def fits(schema: Schema, value: Any, root: Schema) -> bool:
    """True when `value` has a type the schema allows (shallow)."""
    schema = _resolve(schema, root)
    if "anyOf" in schema:
        return any(fits(branch, value, root) for branch in schema["anyOf"])
    kinds = _types(schema)
    if not kinds:
        return True
    checks = {
        "null": value is None,
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str) and ("enum" not in schema or value in schema["enum"]),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
    }
    return any(checks.get(kind, False) for kind in kinds)


def conform(schema: Schema, value: Any, root: Schema | None = None) -> Any:
    """`value` reshaped to validate against `schema`."""
    root = root if root is not None else schema
    schema = _resolve(schema, root)
    if "anyOf" in schema:
        branches = [_resolve(b, root) for b in schema["anyOf"]]
        for branch in branches:
            if fits(branch, value, root):
                return conform(branch, value, root)
        if any("null" in _types(b) for b in branches):
            return None
        return conform(branches[0], value, root)
    kinds = _types(schema)
    if "null" in kinds and value is None:
        return None
    kind = next((k for k in kinds if k != "null"), None)
    if kind == "object":
        source = value if isinstance(value, dict) else {}
        props: dict[str, Schema] = schema.get("properties", {})
        return {key: conform(sub, source.get(key), root) for key, sub in props.items()}
    if kind == "array":
        items = schema.get("items", {})
        return [conform(items, v, root) for v in value] if isinstance(value, list) else []
    if kind == "string":
        if "enum" in schema:
            return value if value in schema["enum"] else schema["enum"][0]
        return value if isinstance(value, str) else ("" if value is None else str(value))
    if kind in {"number", "integer"}:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = 0.0
        return int(number) if kind == "integer" else number
    if kind == "boolean":
        return bool(value)
    if kind is None and "null" in kinds:
        return None
    return value
