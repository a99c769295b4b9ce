"""One logging setup for every process; never log transcripts, names, emails or secrets.

Production logs are one JSON object a line (`MEETSYNC_LOG_FORMAT=json`, the default):

    {"ts": "...", "level": "warning", "logger": "workers.outcomes", "msg": "op failed",
     "event": "op_failed", "correlation_id": "c0ffee…", "org": "acme", "meeting": "m-…",
     "op": "9f2c…", "provider": "salesforce", "reason": "INVALID_FIELD: …"}

What a line is about comes from the *log context*: `bind(org=…, meeting=…)` for the
duration of a block (a request, a message, a provider call). The correlation id is bound
once at the webhook, carried through every queue in the messages' options
(`workers.tracing`) and bound again around every message, so one meeting reads as one
story across processes. Extra fields of a line go in `extra={"event": …, "reason": …}`.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from meetsync.masking import mask_text

# the fields a line may carry from its context; none of them is free text
CONTEXT_FIELDS = ("correlation_id", "org", "meeting", "op", "provider", "connection", "request_id")
_EMPTY: Mapping[str, str] = MappingProxyType({})
_context: ContextVar[Mapping[str, str]] = ContextVar("meetsync_log_context", default=_EMPTY)

# attributes every LogRecord has: anything else on a record came from `extra=`
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
NOISY = ("httpx", "httpcore", "urllib3", "asana", "slack_sdk", "openai", "simple_salesforce")


class MaskCredentials(logging.Filter):
    """Masks URL passwords and secret-named parameters in messages and tracebacks."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = mask_text(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        return True


def context() -> Mapping[str, str]:
    """The fields bound in this thread or task."""
    return _context.get()


def new_correlation_id() -> str:
    return uuid.uuid4().hex


@contextmanager
def bind(**fields: Any) -> Iterator[Mapping[str, str]]:
    """Add fields to the log context for the duration of the block (None leaves one out)."""
    merged = {**_context.get(), **{k: str(v) for k, v in fields.items() if v not in (None, "")}}
    token = _context.set(merged)
    try:
        yield merged
    finally:
        _context.reset(token)


def replace_context(fields: Mapping[str, Any]) -> None:
    """Set the whole context (a worker thread starting a message); `{}` clears it."""
    _context.set({k: str(v) for k, v in fields.items() if v not in (None, "")})


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the context, the extras."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_context.get(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value if isinstance(value, int | float | bool | None) else str(value)
        if record.exc_info and record.exc_info[0] is not None:
            # the exception's type and where, never its message: it may quote a payload
            line["exc_type"] = record.exc_info[0].__name__
            lines = self.formatException(record.exc_info).splitlines()
            frames = [i for i, text in enumerate(lines) if text.lstrip().startswith("File ")]
            # "Traceback …" first (what log scans look for), then the raising frame and code
            line["stack"] = lines[:1] + (lines[frames[-1] : frames[-1] + 2] if frames else [])
        return json.dumps(line, default=str)


def configure(level: str = "INFO", fmt: str = "json") -> None:
    """Log to stderr, JSON lines (`json`) or through rich (`text`, for a terminal)."""
    handler: logging.Handler
    if fmt == "text":
        from rich.logging import RichHandler

        handler = RichHandler(show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    handler.addFilter(MaskCredentials())  # credentials masked wherever they sit
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
