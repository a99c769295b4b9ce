"""Writing org memory: checked entries in, one row each; conflicts refused before any write.

Every source (the admin CLI and API, import files, provider syncs, the pipeline's own open
commitments, what review teaches) writes through `put_entry`, so the same rules hold for all:
an alias names one person only, an entry is short enough to leave room for the transcript,
a person is one row however often a provider sync sees them.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Select, bindparam, delete, insert, or_, select
from sqlalchemy.orm import Session

from extraction.memory.search import lexical, words_of
from meetsync.db.models import MemoryEntry, MemoryLearning
from meetsync.memory import ENTRY_MODELS, KINDS, label_of


class MemoryConflict(ValueError):
    """The entry contradicts what memory already holds (an alias another person has)."""


class BadEntry(ValueError):
    """The entry does not fit its kind; the message names each field."""


def check_entry(kind: str, data: Any) -> dict[str, Any]:
    """The entry as stored, checked against its kind's model; BadEntry naming each field."""
    model = ENTRY_MODELS.get(kind)
    if model is None:
        raise BadEntry(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    try:
        entry = model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or kind}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise BadEntry(problems) from None
    return entry.model_dump(mode="json", exclude_defaults=True)


def names_of(kind: str, data: dict[str, Any]) -> list[str]:
    """What a transcript may say for this entry: name, aliases, a commitment's account."""
    names = [label_of(kind, data), *data.get("aliases", [])]
    if kind == "commitment" and data.get("account"):
        names.append(str(data["account"]))
    return [n for n in names if n]


def put_entry(
    session: Session,
    org_id: str,
    kind: str,
    data: Any,
    *,
    source: str = "admin",
    source_ref: str | None = None,
    entry_id: str | None = None,
) -> MemoryEntry:
    """Store one entry (new, or replacing `entry_id` or the person with this email or
    provider id); MemoryConflict when an alias is another person's or term's."""
    checked = check_entry(kind, data)
    row = _existing(session, org_id, kind, checked, source, source_ref, entry_id)
    _refuse_claimed(session, org_id, kind, checked, row.id if row is not None else None)
    if row is None:
        row = MemoryEntry(org_id=org_id, kind=kind)
        session.add(row)
    elif kind == "person" and source not in {"admin", "import"}:
        checked = _merged(row.data, checked)  # a sync adds ids; it never drops an admin's alias
    row.name = label_of(kind, checked)[:400]
    row.aliases = list(checked.get("aliases", []))
    row.email = checked.get("email") if kind == "person" else None
    row.account = checked.get("account")
    row.status = checked.get("status", "open") if kind == "commitment" else None
    row.person_id = _person_id(session, org_id, checked.get("owner") or checked.get("person"))
    row.source, row.source_ref, row.data = source, source_ref or row.source_ref, checked
    row.search_text = " ".join(names_of(kind, checked))
    session.flush()
    return row


def delete_entry(session: Session, org_id: str, entry_id: str) -> list[str]:
    """Delete an entry; for a person, every entry about them too. The ids deleted."""
    row = session.get(MemoryEntry, entry_id)
    if row is None or row.org_id != org_id:
        return []
    ids = [row.id]
    if row.kind == "person":
        about = select(MemoryEntry.id).where(
            MemoryEntry.org_id == org_id, MemoryEntry.person_id == row.id
        )
        ids += list(session.scalars(about))
    session.execute(
        delete(MemoryEntry).where(MemoryEntry.id.in_(ids)),
        execution_options={"synchronize_session": "fetch"},
    )
    # what review taught about them goes too: the names heard and meant are theirs
    session.execute(
        delete(MemoryLearning).where(
            MemoryLearning.org_id == org_id, MemoryLearning.entry_id.in_(ids)
        ),
        execution_options={"synchronize_session": "fetch"},
    )
    return ids


def entries(session: Session, org_id: str, kind: str | None = None) -> list[MemoryEntry]:
    """The org's entries, in a stable order: kind, name, id."""
    query = select(MemoryEntry).where(MemoryEntry.org_id == org_id)
    if kind is not None:
        query = query.where(MemoryEntry.kind == kind)
    return list(session.scalars(query.order_by(MemoryEntry.kind, MemoryEntry.name, MemoryEntry.id)))


def find_person(session: Session, org_id: str, who: str | None) -> MemoryEntry | None:
    """The person entry `who` (email, name or alias) names, if exactly one."""
    if not who:
        return None
    key = who.strip().casefold()
    if "@" in key:
        people = list(
            session.scalars(
                select(MemoryEntry).where(
                    MemoryEntry.org_id == org_id,
                    MemoryEntry.kind == "person",
                    MemoryEntry.email == key,
                )
            )
        )
    else:
        people = _named(session, org_id, "person", [who])
    hits = [p for p in people if key in {n.casefold() for n in (p.name, p.email or "", *p.aliases)}]
    return hits[0] if len(hits) == 1 else None


def _named(session: Session, org_id: str, kind: str, names: list[str]) -> list[MemoryEntry]:
    """The org's entries of `kind` sharing a word with `names` (the lexical index's pick)."""
    ids = lexical(session, org_id, words_of(names, stop=set()), limit=10_000)  # "Will" too
    if not ids:
        return []
    query = select(MemoryEntry).where(
        MemoryEntry.org_id == org_id, MemoryEntry.kind == kind, MemoryEntry.id.in_(ids)
    )
    return list(session.scalars(query))


def _person_id(session: Session, org_id: str, who: str | None) -> str | None:
    person = find_person(session, org_id, who)
    return person.id if person is not None else None


def _existing(
    session: Session,
    org_id: str,
    kind: str,
    checked: dict[str, Any],
    source: str,
    source_ref: str | None,
    entry_id: str | None,
) -> MemoryEntry | None:
    if entry_id is not None:
        row = session.get(MemoryEntry, entry_id)
        if row is None or row.org_id != org_id:
            raise LookupError(f"no memory entry {entry_id!r} in org {org_id!r}")
        if row.kind != kind:
            raise BadEntry(f"entry {entry_id} is a {row.kind}, not a {kind}")
        return row
    same = select(MemoryEntry).where(MemoryEntry.org_id == org_id, MemoryEntry.kind == kind)
    keys = []
    if source_ref:
        keys.append(MemoryEntry.source_ref == source_ref)
    if kind == "person" and checked.get("email"):
        keys.append(MemoryEntry.email == checked["email"])
    if kind in {"term", "preference"}:
        keys.append(MemoryEntry.name == label_of(kind, checked))
    if not keys:
        return None
    return session.scalars(same.where(or_(*keys)).order_by(MemoryEntry.created_at)).first()


def _refuse_claimed(
    session: Session, org_id: str, kind: str, checked: dict[str, Any], own_id: str | None
) -> None:
    """An alias (or name) may point at one person, one term: refuse a second claimant."""
    if kind not in {"person", "term"}:
        return
    claimed = {n.casefold(): n for n in names_of(kind, checked)}
    for other in _named(session, org_id, kind, list(claimed.values())):
        if other.id == own_id:
            continue
        for name in (other.name, *other.aliases):
            if name.casefold() in claimed:
                raise MemoryConflict(
                    f"{kind} {label_of(kind, checked)!r}: {claimed[name.casefold()]!r} already "
                    f"names {kind} {other.name!r} (entry {other.id}); remove it from one of them"
                )


def _merged(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    merged = {**old, **{k: v for k, v in new.items() if v not in (None, [], "")}}
    for key in ("aliases", "accounts"):
        values: Iterable[str] = [*old.get(key, []), *new.get(key, [])]
        merged[key] = list(dict.fromkeys(values))
        if not merged[key]:
            merged.pop(key)
    return merged


def put_commitments(session: Session, org_id: str, entries: dict[str, dict[str, Any]]) -> None:
    """Store a meeting's open commitments by source ref, in one read and one write (the
    pipeline's path, once per planned meeting). A commitment a later meeting closed stays
    closed when its meeting is planned again."""
    if not entries:
        return
    checked = {ref: check_entry("commitment", data) for ref, data in entries.items()}
    with session.no_autoflush:
        params = {"org_id": org_id, "refs": list(checked)}
        stored = {row.source_ref: row for row in session.scalars(_by_source(), params)}
        people = _people(session, org_id, {d["owner"] for d in checked.values() if d.get("owner")})
    added: list[dict[str, Any]] = []
    for ref, data in checked.items():
        row = stored.get(ref)
        if row is not None and row.status == "closed":
            continue
        values = {
            "name": label_of("commitment", data)[:400],
            "aliases": [],
            "email": None,
            "account": data.get("account"),
            "status": data.get("status", "open"),
            "person_id": people.get(data.get("owner") or ""),
            "source": "meeting",
            "source_ref": ref,
            "data": data,
            "search_text": " ".join(names_of("commitment", data)),
        }
        if row is None:
            added.append({"org_id": org_id, "kind": "commitment", **values})
        else:
            for name, value in values.items():
                setattr(row, name, value)
    if added:
        # a meeting's new commitments in one INSERT, without the unit of work's bookkeeping
        # for objects nobody reads back here (Core: meetsync/db/session.py)
        session.connection().execute(insert(MemoryEntry), added)
    session.flush()


# run once per planned meeting: built once, with bind parameters (meetsync/db/session.py)
@cache
def _by_source() -> Select[MemoryEntry]:
    """An org's (`org_id`) entries by source ref (`refs`)."""
    return select(MemoryEntry).where(
        MemoryEntry.org_id == bindparam("org_id"),
        MemoryEntry.source_ref.in_(bindparam("refs", expanding=True)),
    )


@cache
def _people_by_email() -> Select[str | None, str]:
    """An org's (`org_id`) people with one of the (casefolded) `emails`."""
    return select(MemoryEntry.email, MemoryEntry.id).where(
        MemoryEntry.org_id == bindparam("org_id"),
        MemoryEntry.kind == "person",
        MemoryEntry.email.in_(bindparam("emails", expanding=True)),
    )


def _people(session: Session, org_id: str, whos: set[str]) -> dict[str, str]:
    """Person ids by who names them (an email in one query; a name as `find_person` does)."""
    emails = {w for w in whos if "@" in w}
    found: dict[str, list[str]] = {}
    if emails:
        params = {"org_id": org_id, "emails": list({e.strip().casefold() for e in emails})}
        for email, entry_id in session.connection().execute(_people_by_email(), params):
            found.setdefault(str(email), []).append(entry_id)
    people = {w: ids[0] for w in emails if len(ids := found.get(w.strip().casefold(), [])) == 1}
    for who in whos - emails:
        if (person := find_person(session, org_id, who)) is not None:
            people[who] = person.id
    return people
