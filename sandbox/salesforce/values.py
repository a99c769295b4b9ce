"""Checks one written value against its field, answering with Salesforce's error codes."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sandbox.salesforce import ids
from sandbox.salesforce.faults import SalesforceFault
from sandbox.salesforce.schema import NUMERIC, FieldDef

TEXT = {"string", "combobox", "email", "url", "phone", "textarea", "picklist"}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_JSON_KIND = {
    bool: "VALUE_TRUE",
    int: "VALUE_NUMBER_INT",
    float: "VALUE_NUMBER_FLOAT",
    str: "VALUE_STRING",
    list: "START_ARRAY",
    dict: "START_OBJECT",
}


def sf_datetime(moment: datetime) -> str:
    """A datetime as Salesforce writes it: 2026-11-22T10:00:00.000+0000."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def parse_datetime(value: str) -> datetime | None:
    """An ISO 8601 datetime as Salesforce accepts it (Z, +hh:mm or +hhmm offsets)."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parser_error(kind: str, value: Any) -> SalesforceFault:
    token = _JSON_KIND.get(type(value), "VALUE_STRING")
    return SalesforceFault(
        400,
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {kind} from {token} value {value} or request may be "
        "missing a required field at [line:1, column:1]",
    )


def clean(f: FieldDef, value: Any) -> Any:
    """The stored form of `value` for field `f`, or a SalesforceFault saying why not."""
    if value is None:
        if f.required:
            raise SalesforceFault(
                400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{f.name}]", [f.name]
            )
        return None
    kind = f.type
    if kind in TEXT:
        return _text(f, value)
    if kind in NUMERIC:
        return _number(f, value)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _parser_error("boolean", value)
        return value
    if kind == "date":
        if not isinstance(value, str) or not _DATE.match(value):
            raise _parser_error("date", value)
        try:
            date.fromisoformat(value)
        except ValueError:
            raise _parser_error("date", value) from None
        return value
    if kind == "datetime":
        moment = parse_datetime(value) if isinstance(value, str) else None
        if moment is None:
            raise _parser_error("datetime", value)
        return sf_datetime(moment)
    if kind in {"reference", "id"}:
        full = ids.normalize(value) if isinstance(value, str) else None
        if full is None:
            raise SalesforceFault(
                400, "MALFORMED_ID", f"{f.label}: id value of incorrect type: {value}", [f.name]
            )
        return full
    return value


def _text(f: FieldDef, value: Any) -> str:
    if isinstance(value, (bool, dict, list)):
        raise _parser_error("string", value)
    text = value if isinstance(value, str) else str(value)
    if f.length and len(text) > f.length:
        raise SalesforceFault(
            400,
            "STRING_TOO_LONG",
            f"{f.label}: data value too large: {text[:80]} (max length={f.length})",
            [f.name],
        )
    if f.restricted and text not in f.picklist:
        raise SalesforceFault(
            400,
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"{f.label}: bad value for restricted picklist field: {text}",
            [f.name],
        )
    if f.type == "email" and text and not _EMAIL.match(text):
        raise SalesforceFault(
            400, "INVALID_EMAIL_ADDRESS", f"{f.label}: invalid email address: {text}", [f.name]
        )
    return text


def _number(f: FieldDef, value: Any) -> float | int:
    if isinstance(value, bool):
        raise _parser_error(f.type, value)
    number: float | int
    if isinstance(value, (int, float)):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise _parser_error(f.type, value) from None
    else:
        raise _parser_error(f.type, value)
    if f.type == "int":
        if float(number) != int(number):
            raise _parser_error("int", value)
        return int(number)
    return float(number)


def end_after(start: str, minutes: int) -> str:
    """EndDateTime for an event that starts at `start` and lasts `minutes`."""
    moment = parse_datetime(start)
    assert moment is not None  # stored datetimes are always valid
    return sf_datetime(moment + timedelta(minutes=minutes))
