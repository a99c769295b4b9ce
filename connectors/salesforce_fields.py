"""Describe results as TargetSchemas, and values checked against them before any write.

A value that does not fit its field raises InvalidMapping naming the field, the value and
what the field allows. Nothing is truncated or coerced into a different meaning: a too-long
Next Step is reported, not cut.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from connectors.base import FieldSchema, TargetSchema
from connectors.errors import InvalidMapping

TEXT = {
    "string",
    "textarea",
    "combobox",
    "email",
    "url",
    "phone",
    "picklist",
    "multipicklist",
    "encryptedstring",
}
NUMBER = {"currency", "double", "percent", "int"}
REFERENCE = {"reference", "id"}


def target_schema(obj: str, describe: dict[str, Any], external_id_field: str) -> TargetSchema:
    """The TargetSchema of one sObject from its describe."""
    fields = [
        FieldSchema(
            name=f["name"],
            type=f["type"],
            label=f.get("label"),
            required=bool(f["createable"] and not f["nillable"] and not f["defaultedOnCreate"]),
            writable=bool(f["createable"] or f["updateable"]),
            length=f.get("length") or None,
            picklist=[p["value"] for p in f.get("picklistValues", []) if p.get("active", True)]
            or None,
            restricted=bool(f.get("restrictedPicklist")),
        )
        for f in describe["fields"]
    ]
    notes = []
    if has_external_id(describe, external_id_field):
        notes.append(f"{external_id_field} is an External ID: writes upsert on it (idempotent)")
    else:
        notes.append(
            f"no External ID field {external_id_field}: writes are reconciled by a "
            "marker in Subject"
        )
    return TargetSchema(target={"object": obj}, fields=fields, notes=notes)


def has_external_id(describe: dict[str, Any], name: str) -> bool:
    return any(f["name"] == name and f.get("externalId") for f in describe["fields"])


def check_fields(
    obj: str, describe: dict[str, Any], fields: dict[str, Any], *, creating: bool, updating: bool
) -> dict[str, Any]:
    """`fields` as Salesforce will accept them, or InvalidMapping for the first misfit."""
    by_name = {f["name"].lower(): f for f in describe["fields"]}
    out: dict[str, Any] = {}
    for name, value in fields.items():
        f = by_name.get(name.lower())
        if f is None:
            raise InvalidMapping(f"{obj} has no field {name!r}", provider_code="INVALID_FIELD")
        if (creating and not f["createable"]) or (updating and not f["updateable"]):
            raise InvalidMapping(
                f"{obj}.{f['name']} is read-only for the integration user",
                provider_code="INVALID_FIELD_FOR_INSERT_UPDATE",
            )
        out[f["name"]] = check_value(obj, f, value)
    return out


def _misfit(obj: str, f: dict[str, Any], value: Any, wants: str, code: str) -> InvalidMapping:
    return InvalidMapping(
        f"{obj}.{f['name']} ({f['type']}) cannot take {value!r}: {wants}", provider_code=code
    )


def check_value(obj: str, f: dict[str, Any], value: Any) -> Any:
    """One value in the JSON form its field takes."""
    kind = f["type"]
    if value is None:
        if not f["nillable"]:
            raise _misfit(obj, f, value, "the field is required", "REQUIRED_FIELD_MISSING")
        return None
    if kind in TEXT:
        return _text(obj, f, value)
    if kind in NUMBER:
        return _number(obj, f, value)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _misfit(obj, f, value, "expected true or false", "JSON_PARSER_ERROR")
        return value
    if kind == "date":
        return _date(obj, f, value)
    if kind == "datetime":
        return _datetime(obj, f, value)
    if kind in REFERENCE and not isinstance(value, str):
        raise _misfit(obj, f, value, "expected a record id", "MALFORMED_ID")
    return value


def _text(obj: str, f: dict[str, Any], value: Any) -> str:
    if not isinstance(value, str):
        raise _misfit(obj, f, value, "expected text", "JSON_PARSER_ERROR")
    length = f.get("length") or 0
    if length and len(value) > length:
        raise _misfit(
            obj,
            f,
            _short(value),
            f"{len(value)} characters, the field holds {length}",
            "STRING_TOO_LONG",
        )
    if f.get("restrictedPicklist"):
        allowed = [p["value"] for p in f.get("picklistValues", []) if p.get("active", True)]
        if value not in allowed:
            raise _misfit(
                obj,
                f,
                value,
                "allowed values are " + ", ".join(allowed),
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            )
    return value


def _number(obj: str, f: dict[str, Any], value: Any) -> float | int:
    if isinstance(value, bool):
        raise _misfit(obj, f, value, "expected a number", "JSON_PARSER_ERROR")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _misfit(obj, f, value, "expected a number", "JSON_PARSER_ERROR") from None
    if f["type"] == "int":
        if not number.is_integer():
            raise _misfit(obj, f, value, "expected a whole number", "JSON_PARSER_ERROR")
        return int(number)
    return number


def _date(obj: str, f: dict[str, Any], value: Any) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    try:
        if isinstance(value, str) and len(value) == 10:
            return date.fromisoformat(value).isoformat()
    except ValueError:
        pass
    raise _misfit(obj, f, value, "expected a date as YYYY-MM-DD", "JSON_PARSER_ERROR")


def _datetime(obj: str, f: dict[str, Any], value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    try:
        if isinstance(value, str):
            datetime.fromisoformat(value.replace("Z", "+00:00"))
            return value
    except ValueError:
        pass
    raise _misfit(obj, f, value, "expected an ISO 8601 datetime", "JSON_PARSER_ERROR")


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."
