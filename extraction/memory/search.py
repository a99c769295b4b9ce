"""Lexical search over an org's memory: SQLite FTS5 on the embedded default, PostgreSQL
full-text in production; any other database scans the org's rows (small orgs, tests)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select, text
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
# PostgreSQL: the query parsed once, in FROM. Written inline as `to_tsquery(:q)`, a prepared
# statement's generic plan parses it again for every candidate row (~1 ms for 200 words),
# and the stored `search_vector` (migration 0010) keeps the rows from being parsed at all.
_QUERY = "to_tsquery('simple', :q) AS q"
# newest first, ties by id: the order of ix_memory_entries_recent read backward (migration
# 0012), so a scan of it stops at its limit; any other tie-break sorts the org's every row
NEWEST = "e.created_at DESC, e.id DESC"


def lexical(session: Session, org_id: str, words: list[str], limit: int = 500) -> list[str]:
    """Ids of the org's entries whose names share a word with `words`, best first."""
    return [hit.id for hit in lexical_hits(session, org_id, words, limit)]


def lexical_hits(
    session: Session,
    org_id: str,
    words: list[str],
    limit: int = 500,
    *,
    kinds: tuple[str, ...] = (),
    status: str | None = None,
    newest: bool = False,
) -> list[Hit]:
    """The org's entries (of `kinds`, in `status`) whose names share a word with `words`,
    best first, or `newest` first: ranking computes every match's text vector again, which
    an org's thousands of open commitments would make the costliest part of a meeting."""
    dialect = session.get_bind().dialect.name
    columns = (
        MemoryEntry.id,
        MemoryEntry.kind,
        MemoryEntry.name,
        MemoryEntry.aliases,
        MemoryEntry.account,
        MemoryEntry.status,
    )
    where = " AND e.kind IN :kinds" if kinds else ""
    where += " AND e.status = :status" if status is not None else ""
    params: dict[str, Any] = {"org": org_id, "n": limit, "kinds": list(kinds), "status": status}
    found: dict[str, Hit] = {}
    for start in range(0, len(words), BATCH):
        batch = words[start : start + BATCH]
        if dialect == "sqlite":
            order = NEWEST if newest else "memory_fts.rank"
            query = " OR ".join('"' + w.replace('"', '""') + '"' for w in batch)
            sql = (
                f"SELECT {_HIT_COLUMNS} FROM memory_fts"
                " JOIN memory_entries e ON e.rowid = memory_fts.rowid"
                f" WHERE memory_fts MATCH :q AND e.org_id = :org{where} ORDER BY {order}"
                " LIMIT :n"
            )
        elif dialect == "postgresql":
            query = " | ".join(w for w in batch if w.isalnum())
            if not query:
                continue
            order = NEWEST if newest else "ts_rank(e.search_vector, q) DESC"
            sql = (
                f"SELECT {_HIT_COLUMNS} FROM memory_entries e, {_QUERY}"
                f" WHERE e.org_id = :org AND e.search_vector @@ q{where}"
                f" ORDER BY {order} LIMIT :n"
            )
        else:
            wanted = set(batch)
            scan = select(MemoryEntry).where(MemoryEntry.org_id == org_id)
            if kinds:
                scan = scan.where(MemoryEntry.kind.in_(kinds))
            if status is not None:
                scan = scan.where(MemoryEntry.status == status)
            rows: Iterable[Any] = [
                (row.id, row.kind, row.name, row.aliases, row.account, row.status)
                for row in session.scalars(scan)
                if wanted & set(words_of([row.search_text]))
            ]
            sql = ""
        if sql:
            statement = text(sql).columns(*columns)
            if kinds:
                statement = statement.bindparams(bindparam("kinds", expanding=True))
            used = {k: v for k, v in params.items() if f":{k}" in sql} | {"q": query}
            rows = session.execute(statement, used)
        for entry_id, kind, name, aliases, account, state in rows:
            if entry_id not in found:
                found[entry_id] = Hit(entry_id, kind, name, aliases or [], account, state)
        if len(found) >= limit:
            break  # the batches come in the transcript's order; enough is enough
    return list(found.values())[:limit]


class Candidates(NamedTuple):
    """What one meeting's lexical search found: the people and terms sharing a word with it
    (best first), and the open commitments that do (newest first), each a row of (id,
    title, account, …): an org's hundreds of them are read as rows, never as objects."""

    names: list[Hit]
    commitments: Sequence[Sequence[Any]]


def names_and_commitments(
    session: Session, org_id: str, words: list[str], names: int, commitments: int
) -> Candidates:
    """`lexical_hits` of the org's people and terms (best first, at most `names`), then of
    its open commitments (newest first, at most `commitments`): on PostgreSQL one statement
    per batch of words for both, and no aliases for the commitments (recall reads none)."""
    if session.get_bind().dialect.name != "postgresql":
        named = lexical_hits(session, org_id, words, names, kinds=("person", "term"))
        open_ = lexical_hits(
            session, org_id, words, commitments, kinds=("commitment",), status="open", newest=True
        )
        return Candidates(named, [(h.id, h.name, h.account) for h in open_])
    # psycopg's own placeholders: the statement runs on the driver's cursor (below)
    matched = (
        "FROM memory_entries e, to_tsquery('simple', %(q)s) AS q"
        " WHERE e.org_id = %(org)s AND e.search_vector @@ q"
    )
    rank = "ts_rank(e.search_vector, q)"
    # the best people and the best terms, then the best of both: one equality on `kind`
    # each, so the (org, kind, …) index bounds the scan to that kind even when statistics
    # taken before the org had memory would have it read the org's every entry
    best = " UNION ALL ".join(
        f"(SELECT e.id, e.name, e.account, e.kind, e.aliases, e.status, {rank} AS r"
        f" {matched} AND e.kind = '{kind}' ORDER BY r DESC LIMIT %(names)s)"
        for kind in ("person", "term")
    )
    # the commitments' rows lead with (id, name, account): what recall reads of them
    parts = {
        "names": (
            "SELECT id, name, account, kind, aliases, status, 0 AS part,"
            f" row_number() OVER (ORDER BY r DESC) AS pos FROM ({best}) AS best"
            " ORDER BY r DESC LIMIT %(names)s"
        ),
        "commitments": (
            "SELECT e.id, e.name, e.account, NULL, NULL, NULL, 1 AS part,"
            f" row_number() OVER (ORDER BY {NEWEST}) AS pos"
            f" {matched} AND e.kind = 'commitment'"
            f" AND e.status = 'open' ORDER BY {NEWEST} LIMIT %(commitments)s"
        ),
    }
    most = {"names": names, "commitments": commitments}
    hits: dict[str, Hit] = {}
    opened: list[Sequence[Any]] = []
    seen: set[str] | None = None  # the commitments' ids, once a second batch may repeat them
    for start in range(0, len(words), BATCH):
        query = " | ".join(w for w in words[start : start + BATCH] if w.isalnum())
        wanted = [k for k in parts if len(hits if k == "names" else opened) < most[k]]
        if not wanted:
            break  # the batches come in the transcript's order; enough is enough
        if not query:
            continue
        union = " UNION ALL ".join(f"({parts[k]})" for k in wanted)
        sql = f"SELECT * FROM ({union}) AS hits ORDER BY part, pos"
        params = {"org": org_id, "q": query, "names": names, "commitments": commitments}
        rows = _driver_rows(session, sql, params)
        split = next((i for i, row in enumerate(rows) if row[6] == 1), len(rows))
        for entry_id, name, account, kind, aliases, state, *_ in rows[:split]:
            if entry_id not in hits:
                hits[entry_id] = Hit(entry_id, kind, name, aliases or [], account, state)
        if seen is None and not opened:
            opened = list(rows[split:])  # the usual meeting: one batch, taken as it came
        else:
            seen = seen if seen is not None else {row[0] for row in opened}
            opened += [row for row in rows[split:] if row[0] not in seen]
            seen.update(row[0] for row in rows[split:])
    return Candidates(list(hits.values())[:names], opened[:commitments])


def _driver_rows(session: Session, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Rows of `sql` as the driver's own tuples, in the session's transaction: a meeting
    reads hundreds of commitments here, and a Result's rows cost ~3 µs each over them (a
    tenth of a meeting's recall). Run through the engine, so its events (statement counts,
    tracing) see it like any other."""
    result = session.connection().exec_driver_sql(sql, params)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()
