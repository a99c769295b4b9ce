"""Org memory as admins and operators see it: add, list, edit, delete, import, export,
sync from the providers; what review decisions taught is shown with each entry (`learned`)
and lives in admin/learning.py.

Every write names its org (an unknown org is NotFound), goes through
`extraction.memory.store.put_entry` (the same checks for every source), and an import
is all or nothing: every row is checked first, each problem reported with its place in
the file (`people[3].email: …`), and nothing is written unless all rows are good.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from admin.errors import Invalid, NotFound
from admin.learning import LearnedOut, lessons_of
from admin.orgs import get_org
from connectors.errors import ConnectorError, RateLimited
from connectors.registry import UnknownConnector, build
from extraction.memory import store
from meetsync.db.models import Connection, MemoryEntry
from meetsync.memory import KINDS, SECTIONS, label_of
from meetsync.models import UtcDatetime
from meetsync.settings import Settings
from workers import connections as owned
from workers.throttle.buckets import Ask, Throttle
from workers.throttle.limits import ask_for_op, make_throttle

log = logging.getLogger(__name__)
MAX_IMPORT_ROWS = 20_000
MAX_THROTTLE_WAIT_S = 60.0  # a sync waits this long for its turn, then reports it
KIND_SECTION: dict[str, str] = {kind: section for section, kind in SECTIONS.items()}


class EntryOut(BaseModel):
    """One memory entry as the CLI and the API show it."""

    id: str
    kind: str
    name: str
    source: str
    data: dict[str, Any]
    updated_at: UtcDatetime
    learned: list[LearnedOut] = Field(
        default_factory=list, description="what review decisions taught this entry, and where"
    )


class ImportReport(BaseModel):
    """What an import wrote: counts per kind."""

    written: dict[str, int]


class SyncReport(BaseModel):
    """What a provider sync found per connection, and which connections could not say."""

    people: dict[str, int]
    skipped: dict[str, str]


def entry_out(row: MemoryEntry, learned: list[LearnedOut] | None = None) -> EntryOut:
    return EntryOut(
        id=row.id,
        kind=row.kind,
        name=row.name,
        source=row.source,
        data=dict(row.data),
        updated_at=row.updated_at,
        learned=learned or [],
    )


def add_entry(
    session: Session, org_id: str, kind: str, data: Any, *, source: str = "admin"
) -> EntryOut:
    """A new entry (a person with a known email or a known term replaces that one)."""
    get_org(session, org_id)
    return entry_out(_put(session, org_id, kind, data, source=source))


def list_entries(
    session: Session, org_id: str, kind: str | None = None, search: str | None = None
) -> list[EntryOut]:
    """The org's entries, optionally of one kind or naming `search` (name or alias)."""
    get_org(session, org_id)
    if kind is not None and kind not in KINDS:
        raise Invalid(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    rows = store.entries(session, org_id, kind)
    if search:
        wanted = search.casefold()
        rows = [r for r in rows if wanted in r.search_text.casefold()]
    lessons = lessons_of(session, org_id, [r.id for r in rows])
    return [entry_out(r, lessons.get(r.id)) for r in rows]


def get_entry(session: Session, org_id: str, entry_id: str) -> MemoryEntry:
    row = session.get(MemoryEntry, entry_id)
    if row is None or row.org_id != org_id:
        raise NotFound(f"no memory entry {entry_id!r} in org {org_id!r}")
    return row


def edit_entry(session: Session, org_id: str, entry_id: str, changes: dict[str, Any]) -> EntryOut:
    """Change some fields of an entry; a field set to null is removed."""
    row = get_entry(session, org_id, entry_id)
    data = {k: v for k, v in {**row.data, **changes}.items() if v is not None}
    return entry_out(_put(session, org_id, row.kind, data, source=row.source, entry_id=row.id))


def delete_entry(session: Session, org_id: str, entry_id: str) -> list[str]:
    """Delete an entry; deleting a person deletes every entry about them. The ids deleted."""
    get_entry(session, org_id, entry_id)
    return store.delete_entry(session, org_id, entry_id)


def export_memory(session: Session, org_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every entry, by section, in the shape `import_memory` reads back."""
    get_org(session, org_id)
    out: dict[str, list[dict[str, Any]]] = {section: [] for section in SECTIONS}
    for row in store.entries(session, org_id):
        out[KIND_SECTION[row.kind]].append(dict(row.data))
    return {k: v for k, v in out.items() if v}


def import_memory(session: Session, org_id: str, document: Any) -> ImportReport:
    """Import a file's sections (people, terms, preferences, commitments): all or nothing."""
    get_org(session, org_id)
    rows = _rows_of(document)
    problems = []
    for where, kind, data in rows:
        try:
            store.check_entry(kind, data)
        except store.BadEntry as exc:
            problems.append(f"{where}: {exc}")
    if problems:
        raise Invalid(_listed("the memory file", problems))
    written: dict[str, int] = {}
    for where, kind, data in rows:
        try:
            store.put_entry(session, org_id, kind, data, source="import")
        except (store.MemoryConflict, store.BadEntry) as exc:
            # the caller's transaction rolls back on this error: rows written so far go too
            raise Invalid(f"{where}: {exc}; nothing was imported") from None
        written[kind] = written.get(kind, 0) + 1
    return ImportReport(written=written)


def sync_people(session: Session, settings: Settings, org_id: str) -> SyncReport:
    """People and their ids from every connection whose connector can list them
    (`people()`: Salesforce users and contacts, Asana users, Slack members), each call
    admitted by the connection's throttle bucket as backfill traffic."""
    get_org(session, org_id)
    found: dict[str, int] = {}
    skipped: dict[str, str] = {}
    throttle = make_throttle(settings)
    for connection in session.query(Connection).filter(Connection.org_id == org_id):
        try:
            config = owned.connection_config(session, settings, connection.name, org_id=org_id)
            connector = build(config)
        except (owned.EndpointRefused, ConnectorError, UnknownConnector) as exc:
            skipped[connection.name] = f"{type(exc).__name__}: {exc}"
            continue
        people: Callable[[], list[dict[str, Any]]] | None = getattr(connector, "people", None)
        if people is None:
            skipped[connection.name] = f"{connection.provider} cannot list people"
            continue
        ask = ask_for_op(
            settings,
            connector=connection.provider,
            connection=connection.name,
            org=org_id,
            target={},
            backfill=True,  # a refresh waits behind live meetings' pushes
        )
        try:
            listed = _throttled(throttle, ask, people)
        except RateLimited as exc:
            throttle.penalize(ask.bucket, max(exc.retry_after, 1.0))
            skipped[connection.name] = (
                f"rate limited: try again in {max(exc.retry_after, 1.0):.0f}s"
            )
            continue
        except ConnectorError as exc:
            skipped[connection.name] = f"{type(exc).__name__}: {exc}"
            continue
        count = 0
        for person in listed:
            ref = f"{connection.provider}:{person.pop('ref', None) or person.get('email')}"
            try:
                store.put_entry(
                    session, org_id, "person", person, source=connection.provider, source_ref=ref
                )
            except (store.MemoryConflict, store.BadEntry) as exc:
                log.warning("memory sync skipped a person of %s: %s", connection.name, exc)
                continue
            count += 1
        found[connection.name] = count
    return SyncReport(people=found, skipped=skipped)


def _throttled(throttle: Throttle, ask: Ask, call: Callable[[], list[dict[str, Any]]]) -> Any:
    """`call` once the connection's bucket admits it (the same buckets as every push)."""
    ticket = 0
    deadline = time.monotonic() + MAX_THROTTLE_WAIT_S
    while True:
        decision = throttle.acquire(ask, ticket)
        if decision.granted:
            break
        if time.monotonic() + decision.wait_ms / 1000 > deadline:
            raise RateLimited(
                "the throttle's wait is too long", retry_after=decision.wait_ms / 1000
            )
        ticket = decision.ticket
        time.sleep(decision.wait_ms / 1000)
    try:
        return call()
    finally:
        throttle.release(ask, decision.lease)


def _put(session: Session, org_id: str, kind: str, data: Any, **options: Any) -> MemoryEntry:
    try:
        return store.put_entry(session, org_id, kind, data, **options)
    except (store.BadEntry, store.MemoryConflict) as exc:
        name = label_of(kind, data if isinstance(data, dict) else {})
        raise Invalid(f"{kind} {name!r}: {exc}") from None
    except LookupError as exc:
        raise NotFound(str(exc)) from None


def _rows_of(document: Any) -> list[tuple[str, str, Any]]:
    if not isinstance(document, dict):
        raise Invalid(f"the memory file must map sections to lists: {', '.join(SECTIONS)}")
    unknown = sorted(set(document) - set(SECTIONS))
    if unknown:
        raise Invalid(f"unknown section(s) {unknown}; known: {', '.join(SECTIONS)}")
    rows: list[tuple[str, str, Any]] = []
    for section, kind in SECTIONS.items():
        values = document.get(section) or []
        if not isinstance(values, list):
            raise Invalid(f"{section}: must be a list of entries")
        rows += [(f"{section}[{k}]", kind, v) for k, v in enumerate(values)]
    if len(rows) > MAX_IMPORT_ROWS:
        raise Invalid(f"{len(rows)} entries; import at most {MAX_IMPORT_ROWS} at a time")
    return rows


def _listed(what: str, problems: list[str]) -> str:
    shown = "; ".join(problems[:20])
    more = f"; … and {len(problems) - 20} more" if len(problems) > 20 else ""
    return f"{len(problems)} problem(s) in {what}, nothing was imported: {shown}{more}"
