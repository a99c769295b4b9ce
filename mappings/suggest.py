""" "Did you mean" suggestions for typos in keys, names and paths."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice nearest to a misspelt word, if one is close enough."""
    options = [c for c in choices if isinstance(c, str)]
    lowered = {c.lower(): c for c in options}
    if word.lower() in lowered:
        return lowered[word.lower()]
    found = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[found[0]] if found else None


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A fix sentence naming the nearest choice, or listing the choices."""
    options = sorted({c for c in choices if isinstance(c, str)})
    near = closest(word, options)
    if near is not None:
        return f"did you mean {near!r}?"
    if options and len(options) <= 12:
        return "use one of: " + ", ".join(options)
    return None
