"""A throwaway org memory for offline evaluation: a dataset's `memory.yaml` loaded into a
temporary SQLite database (migrated, FTS5 and all), so the eval recalls exactly as the
pipeline does."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from extraction.memory.recall import recall
from extraction.memory.store import put_entry
from meetsync.db.migrate import upgrade
from meetsync.db.models import Org
from meetsync.db.session import engine_for, session_scope
from meetsync.memory import SECTIONS
from meetsync.models import MeetingOutput


class Recaller(Protocol):
    def __call__(
        self, meeting: MeetingOutput, profile: dict[str, Any] | None, budget: int
    ) -> tuple[dict[str, Any], int]: ...


@contextmanager
def scratch_memory(document: dict[str, Any], org_ids: set[str]) -> Iterator[Recaller]:
    """A function (meeting, profile, budget) → (profile with recalled memory, its tokens),
    every org in `org_ids` holding the document's entries."""
    with tempfile.TemporaryDirectory(prefix="meetsync-memory-") as folder:
        url = f"sqlite:///{Path(folder) / 'memory.db'}"
        upgrade(url)
        with session_scope(url) as session:
            for org_id in sorted(org_ids):
                session.add(Org(id=org_id, name=org_id, profile={}))
                session.flush()
                for section, kind in SECTIONS.items():
                    for entry in document.get(section) or []:
                        put_entry(session, org_id, kind, entry, source="import")

        def recalled(
            meeting: MeetingOutput, profile: dict[str, Any] | None, budget: int
        ) -> tuple[dict[str, Any], int]:
            with session_scope(url) as session:
                found = recall(session, meeting.org_id, meeting, budget)
            return found.profile(profile), found.tokens

        try:
            yield recalled
        finally:
            engine_for(url).dispose()
