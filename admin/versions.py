"""Mapping versions: each apply stores the YAML, who and when, and the diff to the last one.

Versions are append-only: a rollback stores the old body again as the newest version, so
the history says who went back, when, and what changed by it.
"""

from __future__ import annotations

import difflib

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from admin.errors import NotFound
from admin.orgs import get_org
from mappings import Mapping, MappingError, load_mapping
from mappings.validate import check_connection_orgs
from meetsync.db.models import Connection, MappingVersion
from meetsync.models import UtcDatetime


class VersionOut(BaseModel):
    """One stored version; `body` only when asked for one version."""

    org_id: str
    version: int
    created_by: str
    created_at: UtcDatetime
    comment: str | None
    diff: str | None
    body: str | None = None


class Applied(BaseModel):
    version: VersionOut
    created: bool  # False when the body equals the latest version's: nothing stored


# a mapping is a page or two of YAML; anything past this is a paste gone wrong
MAX_MAPPING_BYTES = 200_000


def parse(body: str, file: str | None = None) -> Mapping:
    """The mapping in `body`; its problems, and later ones, located in `file` if it has one."""
    size = len(body.encode())
    if size > MAX_MAPPING_BYTES:
        raise MappingError(
            f"the mapping is {size:,} bytes; a mapping may be at most {MAX_MAPPING_BYTES:,}",
            file=file,
            fix="split the destinations, or move long templates into shorter ones",
        )
    try:
        mapping = load_mapping(body)
    except MappingError as exc:
        for problem in [exc, *exc.problems]:
            problem.file = file
        raise
    mapping._file = file
    return mapping


def connection_orgs(session: Session) -> dict[str, str]:
    """Every connection's org, for refusing a mapping that names another org's connection."""
    return {name: org for name, org in session.execute(select(Connection.name, Connection.org_id))}


def check_fits_org(session: Session, org_id: str, mapping: Mapping) -> None:
    """MappingError unless the mapping is this org's and names only its own connections."""
    problems = []
    if mapping.org != org_id:
        problems.append(
            MappingError(
                f"this mapping is for org {mapping.org!r}, not {org_id!r}",
                path="org",
                fix=f"set org: {org_id}",
            )
        )
    problems.extend(check_connection_orgs(mapping, connection_orgs(session)))
    for problem in problems:
        problem.file = mapping.source_file
        problem.line = mapping.line_of(problem.path)
    if problems:
        raise MappingError.collect(problems)


def latest_version(session: Session, org_id: str) -> MappingVersion | None:
    return session.scalars(
        select(MappingVersion)
        .where(MappingVersion.org_id == org_id)
        .order_by(MappingVersion.version.desc())
        .limit(1)
    ).first()


def get_version(session: Session, org_id: str, version: int | None = None) -> MappingVersion:
    """One version of an org's mapping; the latest when `version` is None."""
    get_org(session, org_id)
    if version is None:
        row = latest_version(session, org_id)
    else:
        row = session.scalars(
            select(MappingVersion).where(
                MappingVersion.org_id == org_id, MappingVersion.version == version
            )
        ).first()
    if row is None:
        which = f"version {version}" if version is not None else "any mapping yet"
        raise NotFound(f"org {org_id!r} has no {which}")
    return row


def list_versions(session: Session, org_id: str) -> list[VersionOut]:
    get_org(session, org_id)
    rows = session.scalars(
        select(MappingVersion)
        .where(MappingVersion.org_id == org_id)
        .order_by(MappingVersion.version)
    )
    return [version_out(row) for row in rows]


def version_out(row: MappingVersion, *, with_body: bool = False) -> VersionOut:
    return VersionOut(
        org_id=row.org_id,
        version=row.version,
        created_by=row.created_by,
        created_at=row.created_at,
        comment=row.comment,
        diff=row.diff,
        body=row.body if with_body else None,
    )


def apply_version(
    session: Session,
    org_id: str,
    body: str,
    *,
    author: str,
    comment: str | None = None,
    file: str | None = None,
) -> Applied:
    """Check a mapping and store it as the org's newest version (unless it is unchanged)."""
    mapping = parse(body, file)
    get_org(session, org_id)
    check_fits_org(session, org_id, mapping)
    return _store(session, org_id, body, author=author, comment=comment)


def rollback(session: Session, org_id: str, to: int, *, author: str) -> Applied:
    """Make version `to`'s body the newest version again."""
    old = get_version(session, org_id, to)
    mapping = parse(old.body)
    check_fits_org(session, org_id, mapping)  # a connection it names may have gone since
    return _store(session, org_id, old.body, author=author, comment=f"rollback to version {to}")


def _store(
    session: Session, org_id: str, body: str, *, author: str, comment: str | None
) -> Applied:
    latest = latest_version(session, org_id)
    if latest is not None and latest.body == body:
        return Applied(version=version_out(latest), created=False)
    number = latest.version + 1 if latest else 1
    row = MappingVersion(
        org_id=org_id,
        version=number,
        body=body,
        created_by=author,
        comment=comment,
        diff=diff_bodies(latest.body if latest else "", body, number - 1, number),
    )
    session.add(row)
    session.flush()
    return Applied(version=version_out(row), created=True)


def diff_bodies(old: str, new: str, old_version: int, new_version: int) -> str:
    """A unified diff between two mapping bodies, labelled by version."""
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"version {old_version}" if old_version else "(none)",
            tofile=f"version {new_version}",
        )
    )
