"""One logging setup for every process; never log transcripts or secrets."""

from __future__ import annotations

import logging

from rich.logging import RichHandler

from meetsync.masking import mask_text


class MaskCredentials(logging.Filter):
    """Masks URL passwords and secret-named parameters in messages and tracebacks."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = mask_text(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        return True


def configure(level: str = "INFO") -> None:
    """Log to stderr through rich; quiet the chattiest libraries."""
    handler = RichHandler(show_path=False, rich_tracebacks=False)
    handler.addFilter(MaskCredentials())
    logging.basicConfig(level=level, format="%(name)s: %(message)s", handlers=[handler], force=True)
    for noisy in ("httpx", "urllib3", "asana", "slack_sdk", "openai", "simple_salesforce"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
