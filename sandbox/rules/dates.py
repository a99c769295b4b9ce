"""Relative and explicit date expressions resolved against the meeting's local date."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "couple": 2, "a couple": 2, "a couple of": 2,
    "few": 3, "a few": 3,
}  # fmt: skip

_MONTH = (
    r"(?P<month>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_WEEKDAY = r"(?P<weekday>monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
_PREP = r"(?:(?:by|on|before|until|till|due|for|no later than)\s+)?"
_COUNT = (
    r"(?P<count>\d+|a couple of|a couple|couple|a few|few|an?|one|two|three|four|five|six"
    r"|seven|eight|nine|ten)"
)


@dataclass(frozen=True)
class DateMatch:
    """A resolved date and where its expression sits in the text."""

    value: date
    start: int
    end: int


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _next_weekday(today: date, weekday: int, *, next_week: bool) -> date:
    if next_week:
        monday = today - timedelta(days=today.weekday()) + timedelta(days=7)
        return monday + timedelta(days=weekday)
    ahead = (weekday - today.weekday()) % 7
    return today + timedelta(days=ahead or 7)


def _friday_of(today: date, weeks_ahead: int) -> date:
    friday = today - timedelta(days=today.weekday()) + timedelta(days=4 + 7 * weeks_ahead)
    return max(friday, today)


def _month_day(today: date, month: int, day: int, year: int | None) -> date | None:
    try:
        if year is not None:
            return date(year, month, day)
        candidate = date(today.year, month, day)
    except ValueError:
        return None
    if candidate < today - timedelta(days=31):
        # "March 15" said in November means next year's March
        try:
            candidate = date(today.year + 1, month, day)
        except ValueError:
            return None
    return candidate


def _quarter_end(today: date, quarter: int | None, *, following: bool = False) -> date:
    if quarter is None:
        quarter = (today.month - 1) // 3 + 1 + (1 if following else 0)
        year = today.year + (quarter - 1) // 4
        quarter = (quarter - 1) % 4 + 1
    else:
        year = today.year
    end = _month_end(year, quarter * 3)
    return end if end >= today else _month_end(year + 1, quarter * 3)


def _ordinal_day(today: date, day: int) -> date | None:
    for offset in range(0, 3):
        month = (today.month - 1 + offset) % 12 + 1
        year = today.year + (today.month - 1 + offset) // 12
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate >= today:
            return candidate
    return None


def _resolve(kind: str, m: re.Match[str], today: date) -> date | None:
    g = m.groupdict()
    if kind == "iso":
        try:
            return date(int(g["y"]), int(g["m"]), int(g["d"]))
        except ValueError:
            return None
    if kind in {"month_day", "day_month"}:
        year = int(g["year"]) if g.get("year") else None
        return _month_day(today, MONTHS[g["month"][:3].lower()], int(g["day"]), year)
    if kind == "slash":
        year = int(g["year"]) if g.get("year") else None
        if year is not None and year < 100:
            year += 2000
        return _month_day(today, int(g["m"]), int(g["d"]), year)
    if kind == "ordinal":
        return _ordinal_day(today, int(g["day"]))
    if kind == "today":
        return today
    if kind == "tomorrow":
        return today + timedelta(days=1)
    if kind == "after_tomorrow":
        return today + timedelta(days=2)
    if kind == "weekday":
        weekday = WEEKDAYS.index(g["weekday"].lower())
        return _next_weekday(today, weekday, next_week=bool(g.get("next")))
    if kind == "end_week":
        return _friday_of(today, 1 if g.get("next") else 0)
    if kind == "next_week":
        return _friday_of(today, 1)
    if kind == "end_month":
        if g.get("month"):
            month = MONTHS[g["month"][:3].lower()]
            year = today.year if month >= today.month else today.year + 1
            return _month_end(year, month)
        if g.get("next"):
            month = today.month % 12 + 1
            return _month_end(today.year + (1 if month == 1 else 0), month)
        return _month_end(today.year, today.month)
    if kind == "end_quarter":
        if g.get("q"):
            return _quarter_end(today, int(g["q"]))
        return _quarter_end(today, None, following=bool(g.get("next")))
    if kind == "end_year":
        return date(today.year + (1 if g.get("next") else 0), 12, 31)
    if kind == "in_n":
        count = int(g["count"]) if g["count"].isdigit() else NUMBERS[g["count"].lower()]
        unit = g["unit"]
        if unit.startswith("day"):
            return today + timedelta(days=count)
        if unit.startswith("week"):
            return today + timedelta(weeks=count)
        month = today.month - 1 + count
        year = today.year + month // 12
        day = min(today.day, calendar.monthrange(year, month % 12 + 1)[1])
        return date(year, month % 12 + 1, day)
    return None


_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in [
        ("iso", r"\b(?P<y>20\d\d)-(?P<m>\d\d)-(?P<d>\d\d)\b"),
        ("end_month", _PREP + r"(?:the\s+)?end of (?:the\s+)?" + _MONTH + r"\b"),
        ("end_quarter", _PREP + r"(?:the\s+)?end of (?:the\s+)?q(?P<q>[1-4])\b"),
        ("end_quarter", _PREP + r"(?:the\s+)?end of (?:the\s+)?(?P<next>next\s+)?quarter\b"),
        ("end_quarter", _PREP + r"\bq(?P<q>[1-4])\b(?!\s+(?:planning|review|roadmap|numbers))"),
        ("end_month", _PREP + r"(?:the\s+)?end of (?:the\s+|this\s+)?(?P<next>next\s+)?month\b"),
        ("end_year", _PREP + r"(?:the\s+)?end of (?:the\s+|this\s+)?(?P<next>next\s+)?year\b"),
        ("end_year", _PREP + r"\byear[- ]end\b"),
        ("end_week", _PREP + r"(?:the\s+)?end of (?:the\s+|this\s+)?(?P<next>next\s+)?week\b"),
        ("end_week", _PREP + r"\beow\b"),
        (
            "month_day",
            _PREP + r"\b" + _MONTH + r"\.?\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?\b"
            r"(?:,?\s+(?P<year>20\d\d))?",
        ),
        (
            "day_month",
            _PREP
            + r"\b(?:the\s+)?(?P<day>\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?"
            + _MONTH
            + r"\b(?:,?\s+(?P<year>20\d\d))?",
        ),
        (
            "slash",
            _PREP + r"\b(?P<m>1[0-2]|0?[1-9])/(?P<d>3[01]|[12]\d|0?[1-9])"
            r"(?:/(?P<year>(?:20)?\d\d))?\b",
        ),
        ("ordinal", r"\b(?:by|on|before|until)\s+the\s+(?P<day>\d{1,2})(?:st|nd|rd|th)\b"),
        ("after_tomorrow", _PREP + r"\bthe day after tomorrow\b"),
        ("tomorrow", _PREP + r"\btomorrow(?:\s+(?:morning|afternoon|evening|night))?\b"),
        (
            "today",
            _PREP + r"\b(?:end of (?:the\s+)?day|eod|close of business|cob"
            r"|(?:later\s+)?today(?!'s)|tonight|this (?:morning|afternoon|evening)"
            r"|(?:right\s+|straight\s+)?after (?:this|the|our) (?:call|meeting)"
            r"|right after this)\b",
        ),
        (
            "weekday",
            _PREP
            + r"\b(?:(?:this|this coming|coming)\s+|(?P<next>next)\s+)?"
            + _WEEKDAY
            + r"(?:\s+(?:morning|afternoon|evening|eod))?\b",
        ),
        ("next_week", _PREP + r"\b(?:sometime\s+)?next week\b"),
        ("end_week", _PREP + r"\bthis week\b"),
        (
            "in_n",
            r"\b(?:in|within)\s+(?:the\s+next\s+)?"
            + _COUNT
            + r"\s+(?P<unit>days?|weeks?|months?)\b",
        ),
    ]
]

_PAST_BEFORE = re.compile(r"\b(?:since|last|past|ago|from|was|were|on the)\s*$", re.IGNORECASE)


@lru_cache(maxsize=16384)  # asked of the same sentences by both tasks' rules
def find_date(text: str, today: date) -> DateMatch | None:
    """The first date expression in `text` (earliest position), resolved against `today`."""
    best: DateMatch | None = None
    for kind, pattern in _PATTERNS:
        for m in pattern.finditer(text):
            if _PAST_BEFORE.search(text[: m.start()]) and kind in {"weekday", "month_day"}:
                continue
            value = _resolve(kind, m, today)
            if value is None:
                continue
            if best is None or m.start() < best.start:
                best = DateMatch(value, m.start(), m.end())
            break
    return best
