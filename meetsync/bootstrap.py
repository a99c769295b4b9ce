"""Seeds the database from settings: the connections declared there and a default org."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from meetsync.crypto import seal
from meetsync.db.models import Connection, MappingVersion, Org
from meetsync.settings import Settings

DEFAULT_PROFILE = {
    "sells": "a cloud analytics platform (data pipelines, dashboards, governance)",
    "stages": [
        "Prospecting",
        "Qualification",
        "Needs Analysis",
        "Value Proposition",
        "Id. Decision Makers",
        "Perception Analysis",
        "Proposal/Price Quote",
        "Negotiation/Review",
        "Closed Won",
        "Closed Lost",
    ],
    "glossary": {"SOC 2": "security audit report", "POC": "proof of concept"},
    "internal_domains": ["acme.io"],
}


def ensure_org(session: Session, org_id: str, name: str, profile: dict | None = None) -> Org:
    org = session.get(Org, org_id)
    if org is None:
        org = Org(id=org_id, name=name, profile=profile or {})
        session.add(org)
        session.flush()
    return org


def sync_connections(session: Session, settings: Settings) -> list[str]:
    """Store each connection declared in settings that the database lacks; the names stored.

    A connection already there is left alone: an admin may have changed it through the
    CLI or the API, and a restart must not write the declared one over it.
    """
    seeded = []
    for name, declared in settings.connections.items():
        if session.get(Connection, name) is not None:
            continue
        ensure_org(session, declared.org_id, declared.org_id)
        secrets = {k: v.get_secret_value() for k, v in declared.credentials.items()}
        row = Connection(name=name, org_id=declared.org_id, provider=declared.provider)
        row.base_url = declared.base_url
        row.credentials = seal(settings, secrets)
        row.options = dict(declared.options)
        session.add(row)
        seeded.append(name)
    session.flush()
    return seeded


def apply_mapping(session: Session, org_id: str, body: str, author: str = "system") -> int:
    """Store a new mapping version for an org unless it equals the latest; return the version."""
    latest = session.scalars(
        select(MappingVersion)
        .where(MappingVersion.org_id == org_id)
        .order_by(MappingVersion.version.desc())
        .limit(1)
    ).first()
    if latest is not None and latest.body == body:
        return latest.version
    version = (latest.version + 1) if latest else 1
    session.add(MappingVersion(org_id=org_id, version=version, body=body, created_by=author))
    session.flush()
    return version


def seed_demo(session: Session, settings: Settings, mapping_file: Path) -> None:
    """The embedded default: org acme, its sandbox connections and the example mapping."""
    ensure_org(session, "acme", "Acme Analytics", DEFAULT_PROFILE)
    sync_connections(session, settings)
    apply_mapping(session, "acme", mapping_file.read_text())
