"""Asana's error answers: `AsanaError`, raised inside a handler, and the body it becomes.

The body is Asana's `{"errors": [{"message", "help"}]}` envelope with the documented status
codes; server errors carry a support phrase, and every 429 says RATE_LIMITED.
"""

from __future__ import annotations

from typing import Any

HELP = (
    "For more information on API status codes and how to handle them, "
    "read the docs on errors: https://developers.asana.com/docs/errors"
)
RATE_LIMITED = (
    "You've made too many requests and hit a rate limit. "
    "Please retry after the given amount of time."
)


class AsanaError(Exception):
    """Raised inside a handler; rendered as Asana's error body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_body(status: int, message: str) -> dict[str, Any]:
    """Asana's error envelope; server errors carry a support phrase."""
    error: dict[str, Any] = {"message": message, "help": HELP}
    if status >= 500:
        error["phrase"] = "6 sad squid snuggle softly"
    return {"errors": [error]}
