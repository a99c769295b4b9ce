"""The amounts of money a sentence states, normalised: "$80k" is (80000.0, "USD").

A number counts as money when a currency sits next to it (a symbol, a code or a word) or a
scale does ("80k", "1.2 million"); bare numbers ("3 seats", "2026") are not amounts.
"""

from __future__ import annotations

import re

SCALES = {
    "k": 1e3, "thousand": 1e3, "grand": 1e3, "m": 1e6, "mm": 1e6, "mn": 1e6, "million": 1e6,
    "b": 1e9, "bn": 1e9, "billion": 1e9,
}  # fmt: skip
CURRENCIES = {
    "$": "USD", "us$": "USD", "usd": "USD", "dollar": "USD", "dollars": "USD", "bucks": "USD",
    "€": "EUR", "eur": "EUR", "euro": "EUR", "euros": "EUR",
    "£": "GBP", "gbp": "GBP", "pound": "GBP", "pounds": "GBP",
    "¥": "JPY", "jpy": "JPY", "yen": "JPY", "chf": "CHF", "francs": "CHF",
    "cad": "CAD", "c$": "CAD", "aud": "AUD", "a$": "AUD", "inr": "INR", "₹": "INR",
}  # fmt: skip
_SYMBOL = r"(?P<pre>us\$|c\$|a\$|[$€£¥₹]|usd|eur|gbp|chf|cad|aud|jpy|inr)"
_SCALE = r"(?P<scale>thousand|grand|million|billion|mm|mn|bn|k|m|b)"
_WORD = r"(?P<post>usd|eur|gbp|chf|cad|aud|jpy|inr|dollars?|bucks|euros?|pounds?|yen|francs)"
_AMOUNT = re.compile(
    rf"(?:{_SYMBOL}\s?)?(?P<num>\d[\d,]*(?:\.\d+)?|\.\d+)(?:\s?{_SCALE}\b)?(?:\s?{_WORD}\b)?",
    re.IGNORECASE,
)

Amount = tuple[float, str | None]


def amounts(text: str) -> list[Amount]:
    """Each amount of money in `text` with its ISO 4217 currency (None when unsaid)."""
    found: list[Amount] = []
    for m in _AMOUNT.finditer(text):
        if not (m["pre"] or m["scale"] or m["post"]):
            continue
        try:
            number = float(m["num"].replace(",", ""))
        except ValueError:
            continue
        number *= SCALES.get((m["scale"] or "").lower(), 1.0)
        marker = (m["pre"] or m["post"] or "").lower()
        found.append((number, CURRENCIES.get(marker)))
    return found


def supports(value: float, currency: str | None, text: str) -> bool:
    """Whether `text` states `value` (to a cent, or 0.5%) in `currency` (when both say one)."""
    wanted = (currency or "").strip().upper() or None
    for number, said in amounts(text):
        if abs(number - value) > max(0.01, abs(number) * 0.005):
            continue
        if wanted is None or said is None or said == wanted:
            return True
    return False
