"""Runs an admin command against the database and reports its errors as one clear line each."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from sqlalchemy.orm import Session

from mappings import MappingError
from meetsync.admin.errors import AdminError
from meetsync.db.session import session_scope
from meetsync.settings import Settings, get_settings

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


@contextmanager
def admin_session() -> Iterator[tuple[Session, Settings]]:
    """A committed session and the settings; AdminError and MappingError exit 1 with the reason."""
    settings = get_settings()
    with reported(), session_scope(settings.database_url) as session:
        yield session, settings


@contextmanager
def reported() -> Iterator[None]:
    try:
        yield
    except MappingError as exc:
        print_problems(exc.problems)
        raise typer.Exit(1) from None
    except AdminError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None


def print_problems(problems: list[MappingError]) -> None:
    """One line per problem: `file:line path: message (fix: …)`."""
    for problem in problems:
        err.print(problem.describe(), markup=False)
    err.print(f"{len(problems)} problem{'s' if len(problems) != 1 else ''}", markup=False)


def current_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return "cli"
