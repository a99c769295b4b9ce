"""Runs an admin command against the database and reports its errors as one clear line each."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from sqlalchemy.orm import Session

from admin.errors import AdminError
from mappings import MappingError
from meetsync.crypto import MissingKeys
from meetsync.db.session import session_scope
from meetsync.settings import Settings, get_settings


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
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except MissingKeys as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def print_problems(problems: list[MappingError]) -> None:
    """One line per problem: `file:line path: message (fix: …)`."""
    for problem in problems:
        typer.echo(problem.describe(), err=True)
    typer.echo(f"{len(problems)} problem{'s' if len(problems) != 1 else ''}", err=True)


def current_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return "cli"
