"""One logging setup for every process; never log transcripts or secrets."""

from __future__ import annotations

import logging

from rich.logging import RichHandler


def configure(level: str = "INFO") -> None:
    """Log to stderr through rich; quiet the chattiest libraries."""
    logging.basicConfig(
        level=level,
        format="%(name)s: %(message)s",
        handlers=[RichHandler(show_path=False, rich_tracebacks=False)],
        force=True,
    )
    for noisy in ("httpx", "urllib3", "asana", "slack_sdk", "openai", "simple_salesforce"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
