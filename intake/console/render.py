"""Rendering console pages: Jinja2 templates with the session's org and CSRF token."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from meetsync.db.session import session_scope
from meetsync.settings import Settings

HERE = Path(__file__).resolve().parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")


def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A template rendered for the signed-in admin (or for nobody, on the sign-in page)."""
    context.setdefault("admin", getattr(request.state, "console", None))
    context.setdefault("csrf", getattr(request.state, "csrf", ""))
    return TEMPLATES.TemplateResponse(request, name, context, status_code=status)


def message(request: Request, text: str, status: int = 200, kind: str = "error") -> HTMLResponse:
    """A one-sentence answer, as a full page or as the fragment an htmx request swaps in."""
    if request.headers.get("HX-Request"):
        return page(request, "_message.html", status, text=text, kind=kind)
    return page(request, "message.html", status, text=text, kind=kind)


@contextmanager
def store(request: Request) -> Iterator[tuple[Session, Settings]]:
    """A database session (committed at the end, rolled back on any error) and the settings."""
    settings: Settings = request.app.state.settings
    with session_scope(settings.database_url) as session:
        yield session, settings


def pairs(text: str) -> dict[str, str]:
    """`key=value` lines (credentials, options) as a dict; blank lines and `#` lines skipped."""
    found = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"write each one as key=value (not {key.strip()[:40]!r})")
            found[key.strip()] = value.strip()
    return found
