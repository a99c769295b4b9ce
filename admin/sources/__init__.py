"""Backfill sources: where past meetings come from. Pick one with `--source NAME[:ARG]`.

Built in: `stored` (meetings already in the database), `file:PATH` (a JSONL file or a
directory of JSON/JSONL files of MeetingOutput records) and `notes-api` (the notes
pipeline's paginated HTTP API; contract in README.md). Another package adds one with an
entry point in the `meetsync.sources` group: a callable `(arg, settings) -> Source`.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points

from admin.sources.base import Source, SourceError, SourceRecord, Window
from meetsync.settings import Settings

__all__ = ["Source", "SourceError", "SourceRecord", "Window", "known_sources", "open_source"]

Factory = Callable[[str | None, Settings], Source]


def _stored(arg: str | None, settings: Settings) -> Source:
    from admin.sources.stored import StoredMeetings

    return StoredMeetings(settings.database_url)


def _file(arg: str | None, settings: Settings) -> Source:
    from admin.sources.files import RecordFiles

    if not arg:
        raise SourceError("file source needs a path: --source file:PATH")
    return RecordFiles(arg)


def _notes_api(arg: str | None, settings: Settings) -> Source:
    from admin.sources.notes_api import NotesApi

    return NotesApi.from_settings(settings.notes_api, base_url=arg)


BUILT_IN: dict[str, Factory] = {"stored": _stored, "file": _file, "notes-api": _notes_api}


def known_sources() -> dict[str, Factory]:
    """Built-in sources plus those other packages declare in `meetsync.sources`."""
    found = dict(BUILT_IN)
    for entry in entry_points(group="meetsync.sources"):
        found.setdefault(entry.name, entry.load())
    return found


def open_source(spec: str, settings: Settings) -> Source:
    """`stored`, `file:PATH`, `notes-api[:BASE_URL]`, or a plugin's `name[:arg]`."""
    name, _, arg = spec.partition(":")
    factories = known_sources()
    if name not in factories:
        known = ", ".join(sorted(factories))
        raise SourceError(f"unknown source {name!r}; known: {known}")
    return factories[name](arg or None, settings)
