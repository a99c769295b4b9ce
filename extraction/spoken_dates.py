"""Which dates a sentence can mean, resolved against the meeting's local date.

A model resolves "by Friday" or "end of Q3" itself; we only check that its ISO date is one
the quote allows. Each expression gives a window of dates (one day for "tomorrow" or
"March 3", a week for "next week", a quarter for "in Q3"), wide enough for the usual
readings ("next Tuesday" is this coming Tuesday or the one after), never wider.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta

Window = tuple[date, date]

WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
COUNTS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "couple": 2, "few": 3,
}  # fmt: skip

_MONTH = (
    r"(?P<month>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in [
        ("iso", r"\b(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})\b"),
        ("month_day", r"\b" + _MONTH + r"\.?\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?\b"),
        ("day_month", r"\b(?P<day>\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTH + r"\b"),
        ("slash", r"\b(?P<a>\d{1,2})[/.](?P<b>\d{1,2})(?:[/.](?P<year>\d{2,4}))?\b"),
        ("ordinal", r"\bthe\s+(?P<day>\d{1,2})(?:st|nd|rd|th)\b"),
        ("month", r"\b" + _MONTH + r"\b"),
        ("quarter", r"\b(?:q(?P<q>[1-4])|(?P<next>next\s+)?quarter)\b"),
        ("year", r"\b(?:(?P<next>next\s+)?year|year[- ]end)\b"),
        ("month_rel", r"\b(?P<next>next\s+)?month\b"),
        ("week", r"\b(?:(?P<next>next\s+)?week|eow)\b"),
        ("day_after", r"\bday after tomorrow\b"),
        ("tomorrow", r"\btomorrow\b"),
        ("today", r"\b(?:today|tonight|eod|end of (?:the\s+)?day|cob|close of business"
                  r"|this (?:morning|afternoon|evening)"
                  r"|after (?:this|the|our) (?:call|meeting))\b"),
        ("weekday", r"\b(?P<weekday>monday|tuesday|wednesday|thursday|friday|saturday|sunday)"),
        ("in_n", r"\b(?P<count>\d+|an?|one|two|three|four|five|six|seven|eight|nine|ten|couple"
                 r"|few)\s+(?:of\s+)?(?P<unit>days?|weeks?|months?)\b"),
    ]
]  # fmt: skip


def parse_iso(value: str | None) -> date | None:
    """The date of a strict YYYY-MM-DD string, or None (2026-02-30 is None)."""
    if not value or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


def windows(text: str, today: date) -> list[Window]:
    """Every window of dates an expression in `text` can mean; [] when it names no date."""
    found: list[Window] = []
    for kind, pattern in _PATTERNS:
        for m in pattern.finditer(text):
            found += _windows(kind, m.groupdict(), today)
    return found


def supports(value: date, text: str, today: date) -> bool:
    """Whether `text`, said on `today`, can mean `value`."""
    return any(lo <= value <= hi for lo, hi in windows(text, today))


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _safe(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _day(d: date) -> list[Window]:
    return [(d, d)]


def _windows(kind: str, g: dict[str, str | None], today: date) -> list[Window]:
    if kind == "iso":
        d = _safe(int(g["y"] or 0), int(g["m"] or 0), int(g["d"] or 0))
        return _day(d) if d else []
    if kind in {"month_day", "day_month"}:
        month = MONTHS[(g["month"] or "")[:3].lower()]
        return [
            (d, d)
            for year in (today.year, today.year + 1)
            if (d := _safe(year, month, int(g["day"] or 0)))
        ]
    if kind == "slash":  # 3/15 or 15/3, this year or the next (or the year said)
        a, b = int(g["a"] or 0), int(g["b"] or 0)
        years = [today.year, today.year + 1]
        if g["year"]:
            years = [int(g["year"]) + (2000 if len(g["year"] or "") == 2 else 0)]
        return [
            (d, d)
            for year in years
            for month, day in ((a, b), (b, a))
            if 1 <= month <= 12 and (d := _safe(year, month, day))
        ]
    if kind == "ordinal":
        day = int(g["day"] or 0)
        out = []
        for offset in range(3):
            month0 = today.month - 1 + offset
            d = _safe(today.year + month0 // 12, month0 % 12 + 1, day)
            if d:
                out.append((d, d))
        return out
    if kind == "month":
        month = MONTHS[(g["month"] or "")[:3].lower()]
        return [(date(y, month, 1), _month_end(y, month)) for y in (today.year, today.year + 1)]
    if kind == "quarter":
        if g["q"]:
            q = int(g["q"])
            return [
                (date(y, 3 * q - 2, 1), _month_end(y, 3 * q)) for y in (today.year, today.year + 1)
            ]
        q0 = (today.month - 1) // 3 + (1 if g["next"] else 0)
        year, q0 = today.year + q0 // 4, q0 % 4
        return [(date(year, 3 * q0 + 1, 1), _month_end(year, 3 * q0 + 3))]
    if kind == "year":
        year = today.year + (1 if g.get("next") else 0)
        return [(date(year, 1, 1), date(year, 12, 31))]
    if kind == "month_rel":
        month0 = today.month - 1 + (1 if g["next"] else 0)
        year, month = today.year + month0 // 12, month0 % 12 + 1
        return [(date(year, month, 1), _month_end(year, month))]
    if kind == "week":
        monday = today - timedelta(days=today.weekday()) + timedelta(days=7 if g["next"] else 0)
        return [(max(today, monday), monday + timedelta(days=6))]
    if kind == "day_after":
        return _day(today + timedelta(days=2))
    if kind == "tomorrow":
        return _day(today + timedelta(days=1))
    if kind == "today":
        return [(today, today + timedelta(days=1))]  # "EOD" late at night is tomorrow's
    if kind == "weekday":
        weekday = WEEKDAYS.index((g["weekday"] or "").lower())
        ahead = (weekday - today.weekday()) % 7
        return [(today + timedelta(days=ahead + 7 * k),) * 2 for k in range(3)]
    if kind == "in_n":
        raw = (g["count"] or "").lower()
        count = int(raw) if raw.isdigit() else COUNTS.get(raw, 0)
        unit = g["unit"] or ""
        days = count * (1 if unit.startswith("day") else 7 if unit.startswith("week") else 30)
        slack = 0 if unit.startswith("day") else 3
        return [(today + timedelta(days=days - slack), today + timedelta(days=days + slack))]
    return []
