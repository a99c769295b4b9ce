"""Lexical search over an org's memory: SQLite FTS5 on the embedded default, PostgreSQL
full-text in production; any other database scans the org's rows (small orgs, tests)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, NamedTuple

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from meetsync.db.models import MemoryEntry

BATCH = 200  # words per full-text query: FTS5 and tsquery both parse each one
_WORD = re.compile(r"[^\W_]+")
STOP = {
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "can", "do", "for", "from", "have",
    "i", "if", "in", "is", "it", "its", "me", "my", "no", "not", "of", "on", "or", "our", "so",
    "that", "the", "their", "then", "there", "they", "this", "to", "up", "us", "was", "we",
    "were", "will", "with", "you", "your", "yes", "yeah", "okay", "ok", "um", "uh", "just",
    "like", "well",
}  # fmt: skip


def words_of(texts: Iterable[str], stop: frozenset[str] | set[str] = STOP) -> list[str]:
    """The distinct lowercase words worth searching for, in first-seen order."""
    seen: dict[str, None] = {}
    for value in texts:
        for word in _WORD.findall(value.casefold()):
            if len(word) > 1 and word not in stop:
                seen.setdefault(word)
    return list(seen)


class Hit(NamedTuple):
    """An entry the lexical index found, as much of it as matching a transcript needs."""

    id: str
    kind: str
    name: str
    aliases: list[str]
    account: str | None
    status: str | None


_HIT_COLUMNS = "e.id, e.kind, e.name, e.aliases, e.account, e.status"


def lexical(session: Session, org_id: str, words: list[str], limit: int = 500) -> list[str]:
    """Ids of the org's entries whose names share a word with `words`, best first."""
    return [hit.id for hit in lexical_hits(session, org_id, words, limit)]


def lexical_hits(session: Session, org_id: str, words: list[str], limit: int = 500) -> list[Hit]:
    """The org's entries whose names share a word with `words`, best first (in the same
    query: a second one would send every id back)."""
    dialect = session.get_bind().dialect.name
    columns = (
        MemoryEntry.id,
        MemoryEntry.kind,
        MemoryEntry.name,
        MemoryEntry.aliases,
        MemoryEntry.account,
        MemoryEntry.status,
    )
    found: dict[str, Hit] = {}
    for start in range(0, len(words), BATCH):
        batch = words[start : start + BATCH]
        if dialect == "sqlite":
            query = " OR ".join('"' + w.replace('"', '""') + '"' for w in batch)
            rows: Iterable[Any] = session.execute(
                text(
                    f"SELECT {_HIT_COLUMNS} FROM memory_fts"
                    " JOIN memory_entries e ON e.rowid = memory_fts.rowid"
                    " WHERE memory_fts MATCH :q AND e.org_id = :org ORDER BY memory_fts.rank"
                    " LIMIT :n"
                ).columns(*columns),
                {"q": query, "org": org_id, "n": limit},
            )
        elif dialect == "postgresql":
            query = " | ".join(w for w in batch if w.isalnum())
            if not query:
                continue
            rows = session.execute(
                text(
                    f"SELECT {_HIT_COLUMNS} FROM memory_entries e WHERE e.org_id = :org AND"
                    " to_tsvector('simple', e.search_text) @@ to_tsquery('simple', :q)"
                    " ORDER BY ts_rank(to_tsvector('simple', e.search_text),"
                    " to_tsquery('simple', :q)) DESC LIMIT :n"
                ).columns(*columns),
                {"q": query, "org": org_id, "n": limit},
            )
        else:
            wanted = set(batch)
            rows = (
                (row.id, row.kind, row.name, row.aliases, row.account, row.status)
                for row in session.scalars(select(MemoryEntry).where(MemoryEntry.org_id == org_id))
                if wanted & set(words_of([row.search_text]))
            )
        for entry_id, kind, name, aliases, account, status in rows:
            if entry_id not in found:
                found[entry_id] = Hit(entry_id, kind, name, aliases or [], account, status)
        if len(found) >= limit:
            break  # the batches come in the transcript's order; enough is enough
    return list(found.values())[:limit]
