"""Transforms: small named steps that turn a read value into what a destination takes.

In YAML a step is a name (`- upper`) or a name with arguments (`- truncate: {max: 255,
at: word}`). Every transform passes an empty value (None) through untouched except
`default`, so an absent fact stays absent and its field is omitted.

    date          ISO date in a zone: {tz: meeting | UTC | <IANA>}; datetimes convert first
    datetime      ISO 8601 datetime in a zone: {tz: ...}
    add_days      a date moved by N days
    format_date   strftime pattern, e.g. "%b %d, %Y"
    map           picklist value map {spoken: Picklist Value}; "*" is the fallback;
                  an unmapped value becomes empty (never written)
    number        a number from 120000, "120k", "$1.2m", "1,200.50": {round: N}
    integer       a whole number
    currency      an AmountFact's value if its currency is {expect: USD}, else empty
    format_money  "$120,000" from a number or an AmountFact: {currency: USD, decimals: 0}
    join          a list as text with a separator (default ", ")
    truncate      explicit rule {max: N, at: char | word | sentence, marker: "…"}
    default       a value to use when empty
    lower, upper, strip, first
    pick          keep these keys of each object in a list
    where         keep action items with {min_confidence: x, owner_internal: bool}
    facts         CRM facts as [{field, value}] for a recap
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .suggest import did_you_mean


@dataclass(frozen=True)
class TransformContext:
    """What transforms may know besides the value: the meeting's time zone."""

    timezone: str = "UTC"


@dataclass(frozen=True)
class Transform:
    """A named transform: how to check its arguments, how to apply it, what it yields."""

    name: str
    apply: Callable[[Any, Any, TransformContext], Any]
    parse: Callable[[Any], Any]
    output: str | None = None  # the kind of value it yields; None: the kind it was given
    passes_empty: bool = True


@dataclass(frozen=True)
class Step:
    """One transform with its checked arguments."""

    transform: Transform
    args: Any = None
    raw: Any = field(default=None, compare=False)


def is_empty(value: Any) -> bool:
    """None, blank text and empty collections count as no value."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, list | dict | tuple) and not value


# --- argument parsers -------------------------------------------------------------------


def _no_args(args: Any) -> None:
    if args is not None:
        raise ValueError("takes no arguments")


def _zone(name: Any) -> str:
    if not isinstance(name, str):
        raise ValueError("tz must be a time zone name")
    if name == "meeting":
        return name
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}; use meeting, UTC or an IANA name") from exc
    return name


def _options(args: Any, allowed: dict[str, Any], *, required: tuple[str, ...] = ()) -> dict:
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ValueError(f"takes options {{{', '.join(allowed)}}}")
    for key in args:
        if key not in allowed:
            hint = did_you_mean(str(key), allowed) or ""
            raise ValueError(f"unknown option {key!r}" + (f"; {hint}" if hint else ""))
    for key in required:
        if key not in args:
            raise ValueError(f"needs option {key!r}")
    return {**allowed, **args}


def _tz_args(args: Any) -> str:
    return _zone(_options(args, {"tz": "meeting"})["tz"])


def _int_arg(args: Any) -> int:
    if isinstance(args, bool) or not isinstance(args, int):
        raise ValueError("takes a whole number")
    return args


def _str_arg(args: Any) -> str:
    if not isinstance(args, str):
        raise ValueError("takes a text argument")
    return args


def _map_args(args: Any) -> dict[str, Any]:
    if not isinstance(args, dict) or not args:
        raise ValueError("takes a non-empty map of spoken value → destination value")
    table: dict[str, Any] = {}
    for key, target in args.items():
        if is_empty(target):
            raise ValueError(f"{key!r} maps to nothing; give the destination's value for it")
        table[_fold(str(key))] = target
    return table


def _round_args(args: Any) -> int | None:
    value = _options(args, {"round": None})["round"]
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError("round takes a whole number of decimals")
    return value


def _currency_code(code: Any) -> str:
    if not isinstance(code, str) or not re.fullmatch(r"[A-Za-z]{3}", code):
        raise ValueError("currency must be an ISO 4217 code such as USD")
    return code.upper()


def _expect_args(args: Any) -> str:
    return _currency_code(_options(args, {"expect": None}, required=("expect",))["expect"])


def _money_args(args: Any) -> dict[str, Any]:
    options = _options(args, {"currency": "USD", "decimals": 0})
    options["currency"] = _currency_code(options["currency"])
    if not isinstance(options["decimals"], int) or not 0 <= options["decimals"] <= 4:
        raise ValueError("decimals must be 0 to 4")
    return options


def _join_args(args: Any) -> str:
    return ", " if args is None else _str_arg(args)


def _truncate_args(args: Any) -> dict[str, Any]:
    options = _options(args, {"max": None, "at": None, "marker": "…"}, required=("max", "at"))
    if isinstance(options["max"], bool) or not isinstance(options["max"], int):
        raise ValueError("max must be a whole number")
    if options["at"] not in ("char", "word", "sentence"):
        raise ValueError("at must be char, word or sentence")
    if not isinstance(options["marker"], str) or len(options["marker"]) >= options["max"]:
        raise ValueError("marker must be text shorter than max")
    return options


def _any_args(args: Any) -> Any:
    return args


def _pick_args(args: Any) -> list[str]:
    if not isinstance(args, list) or not args or not all(isinstance(k, str) for k in args):
        raise ValueError("takes a list of keys")
    return args


def _where_args(args: Any) -> dict[str, Any]:
    options = _options(args, {"min_confidence": None, "owner_internal": None})
    confidence = options["min_confidence"]
    in_range = isinstance(confidence, int | float) and 0 <= confidence <= 1
    if confidence is not None and not in_range:
        raise ValueError("min_confidence must be between 0 and 1")
    if options["owner_internal"] not in (None, True, False):
        raise ValueError("owner_internal must be true or false")
    return options


# --- transforms -------------------------------------------------------------------------


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())


def _zone_of(tz: str, ctx: TransformContext) -> ZoneInfo:
    return ZoneInfo(ctx.timezone if tz == "meeting" else tz)


def _as_datetime(value: Any, zone: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    else:
        moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        return moment.replace(tzinfo=zone)
    return moment.astimezone(zone)


def _as_date(value: Any, zone: ZoneInfo) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    text = value if isinstance(value, datetime) else str(value).strip()
    if isinstance(text, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return date.fromisoformat(text)
    return _as_datetime(value, zone).date()


def _date(value: Any, tz: str, ctx: TransformContext) -> str:
    return _as_date(value, _zone_of(tz, ctx)).isoformat()


def _datetime(value: Any, tz: str, ctx: TransformContext) -> str:
    return _as_datetime(value, _zone_of(tz, ctx)).isoformat()


def _add_days(value: Any, days: int, ctx: TransformContext) -> str:
    return (_as_date(value, ZoneInfo(ctx.timezone)) + timedelta(days=days)).isoformat()


def _format_date(value: Any, pattern: str, ctx: TransformContext) -> str:
    zone = ZoneInfo(ctx.timezone)
    moment = _as_datetime(value, zone) if isinstance(value, datetime) else _as_date(value, zone)
    return moment.strftime(pattern)


def _map(value: Any, table: dict[str, Any], ctx: TransformContext) -> Any:
    key = _fold(str(value))
    return table.get(key, table.get("*"))


_SCALE = {"k": 1e3, "m": 1e6, "mm": 1e6, "b": 1e9, "bn": 1e9}


def _to_number(value: Any) -> float | None:
    if isinstance(value, dict) and "value" in value:  # an AmountFact
        value = value["value"]
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    match = re.fullmatch(
        r"\s*[^\d.\-]{0,3}\s*(-?[\d,]*\.?\d+)\s*(k|mm|m|bn|b)?\s*[A-Za-z]{0,3}\s*",
        str(value).lower(),
    )
    if not match:
        return None
    number = float(match.group(1).replace(",", ""))
    return number * _SCALE.get(match.group(2) or "", 1.0)


def _number(value: Any, decimals: int | None, ctx: TransformContext) -> float | None:
    number = _to_number(value)
    if number is None or decimals is None:
        return number
    return round(number, decimals)


def _integer(value: Any, args: None, ctx: TransformContext) -> int | None:
    number = _to_number(value)
    return None if number is None else round(number)


def _currency(value: Any, expect: str, ctx: TransformContext) -> float | None:
    if isinstance(value, dict):
        code = value.get("currency")
        if code and str(code).upper() != expect:
            return None  # an amount in another currency must not land in this field
    return _to_number(value)


_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def _format_money(value: Any, options: dict[str, Any], ctx: TransformContext) -> str | None:
    code = options["currency"]
    if isinstance(value, dict) and value.get("currency"):
        code = str(value["currency"]).upper()
    number = _to_number(value)
    if number is None:
        return None
    text = f"{number:,.{options['decimals']}f}"
    symbol = _SYMBOLS.get(code)
    return f"{symbol}{text}" if symbol else f"{text} {code}"


def _join(value: Any, separator: str, ctx: TransformContext) -> Any:
    if not isinstance(value, list):
        return value
    return separator.join(str(v) for v in value if not is_empty(v))


def _truncate(value: Any, options: dict[str, Any], ctx: TransformContext) -> str:
    text = str(value)
    limit, marker = options["max"], options["marker"]
    if len(text) <= limit:
        return text
    room = limit - len(marker)
    cut = text[:room]
    if options["at"] == "word" and " " in cut:
        cut = cut[: cut.rstrip().rfind(" ")]
    elif options["at"] == "sentence":
        ends = [m.end() for m in re.finditer(r"[.!?](\s|$)", cut)]
        if ends:
            return cut[: ends[-1]].rstrip()
    return cut.rstrip() + marker


def _default(value: Any, fallback: Any, ctx: TransformContext) -> Any:
    return fallback if is_empty(value) else value


def _text(fn: Callable[[str], str]) -> Callable[[Any, Any, TransformContext], Any]:
    return lambda value, args, ctx: fn(value) if isinstance(value, str) else value


def _first(value: Any, args: None, ctx: TransformContext) -> Any:
    if isinstance(value, list):
        return next((v for v in value if not is_empty(v)), None)
    return value


def _pick(value: Any, keys: list[str], ctx: TransformContext) -> Any:
    if not isinstance(value, list):
        return value
    return [{k: v.get(k) for k in keys} for v in value if isinstance(v, dict)]


def _where(value: Any, options: dict[str, Any], ctx: TransformContext) -> Any:
    if not isinstance(value, list):
        return value
    kept = []
    for item in value:
        if not isinstance(item, dict):
            continue
        if options["min_confidence"] is not None and (
            item.get("confidence", 0) < options["min_confidence"]
        ):
            continue
        wanted = options["owner_internal"]
        if wanted is not None and bool(item.get("owner_internal")) is not wanted:
            continue
        kept.append(item)
    return kept


_FACT_LABELS = {
    "next_steps": "Next steps",
    "stage": "Stage",
    "amount": "Amount",
    "close_date": "Close date",
    "competitors": "Competitors",
    "pain_points": "Pain points",
    "decision_makers": "Decision makers",
    "budget": "Budget",
    "timeline": "Timeline",
    "risks": "Risks",
}


def _facts(value: Any, args: None, ctx: TransformContext) -> Any:
    if not isinstance(value, dict):
        return value
    changes = []
    for name, fact in value.items():
        if not isinstance(fact, dict):
            continue
        if "values" in fact:
            text = ", ".join(fact["values"])
        elif name == "amount":
            text = _format_money(fact, {"currency": "USD", "decimals": 0}, ctx) or ""
        else:
            text = str(fact.get("value", ""))
        if text:
            changes.append({"field": _FACT_LABELS.get(name, name), "value": text})
    return changes


TRANSFORMS: dict[str, Transform] = {
    t.name: t
    for t in (
        Transform("date", _date, _tz_args, "date"),
        Transform("datetime", _datetime, _tz_args, "datetime"),
        Transform("add_days", _add_days, _int_arg, "date"),
        Transform("format_date", _format_date, _str_arg, "str"),
        Transform("map", _map, _map_args, "str"),
        Transform("number", _number, _round_args, "float"),
        Transform("integer", _integer, lambda a: _no_args(a), "int"),
        Transform("currency", _currency, _expect_args, "float"),
        Transform("format_money", _format_money, _money_args, "str"),
        Transform("join", _join, _join_args, "str"),
        Transform("truncate", _truncate, _truncate_args, "str"),
        Transform("default", _default, _any_args, None, passes_empty=False),
        Transform("lower", _text(str.lower), lambda a: _no_args(a), "str"),
        Transform("upper", _text(str.upper), lambda a: _no_args(a), "str"),
        Transform("strip", _text(str.strip), lambda a: _no_args(a), "str"),
        Transform("first", _first, lambda a: _no_args(a), "any"),
        Transform("pick", _pick, _pick_args, "list"),
        Transform("where", _where, _where_args, "list"),
        Transform("facts", _facts, lambda a: _no_args(a), "list"),
    )
}


def parse_step(raw: Any) -> Step:
    """Check one YAML transform step; raises ValueError saying what is wrong."""
    if isinstance(raw, str):
        name, args = raw, None
    elif isinstance(raw, dict) and len(raw) == 1:
        name, args = next(iter(raw.items()))
    else:
        raise ValueError("a transform is a name or {name: arguments} with one name")
    transform = TRANSFORMS.get(name)
    if transform is None:
        hint = did_you_mean(str(name), TRANSFORMS) or ""
        raise ValueError(f"unknown transform {name!r}" + (f"; {hint}" if hint else ""))
    try:
        return Step(transform, transform.parse(args), raw)
    except ValueError as exc:
        raise ValueError(f"transform {name!r}: {exc}") from exc


def apply_steps(value: Any, steps: list[Step], ctx: TransformContext) -> Any:
    """Run a value through transforms in order; values that cannot convert become None."""
    for step in steps:
        if is_empty(value) and step.transform.passes_empty:
            value = None
            continue
        try:
            value = step.transform.apply(value, step.args, ctx)
        except (ValueError, TypeError, OverflowError):
            value = None  # e.g. "next quarter" is not a date: leave the field out
    return value
