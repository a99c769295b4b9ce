"""Orgs and their profiles: what the org sells, its stages and glossary, read by extraction."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from admin.errors import AlreadyExists, Invalid, NotFound
from meetsync.db.models import Connection, MappingVersion, Org
from meetsync.models import UtcDatetime

ORG_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"


class Person(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    email: str | None = None
    title: str | None = None


class OrgProfile(BaseModel):
    """The profile extraction puts in front of the model; unknown keys are typos."""

    model_config = ConfigDict(extra="forbid")

    company: str | None = Field(default=None, description="The org's own name")
    sells: str | None = Field(default=None, description="What the org sells, in a sentence")
    stages: list[str] = Field(default_factory=list, description="Opportunity stages, in order")
    competitors: list[str] = Field(default_factory=list)
    products: list[str] = Field(default_factory=list)
    glossary: dict[str, str] = Field(default_factory=dict, description="Term → meaning")
    people: list[Person] = Field(default_factory=list)
    internal_domains: list[str] = Field(default_factory=list, description="The org's email domains")


class OrgOut(BaseModel):
    """An org as the CLI and the API show it."""

    id: str
    name: str
    profile: dict[str, Any]
    created_at: UtcDatetime
    connections: list[str]
    mapping_version: int | None


def parse_profile(data: Any) -> dict[str, Any]:
    """A checked profile as stored: unset keys left out; Invalid naming each problem."""
    try:
        profile = OrgProfile.model_validate(data or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'profile'}: {e['msg']}" for e in exc.errors()
        )
        raise Invalid(f"bad org profile: {problems}") from None
    return profile.model_dump(mode="json", exclude_defaults=True)


def create_org(session: Session, org_id: str, name: str, profile: Any = None) -> Org:
    """A new org; AlreadyExists if the id is taken."""
    if not re.match(ORG_ID_PATTERN, org_id):
        raise Invalid(f"org id {org_id!r} must be 1-64 letters, digits, '.', '_' or '-'")
    if session.get(Org, org_id) is not None:
        raise AlreadyExists(f"org {org_id!r} exists; `meetsync orgs show {org_id}` shows it")
    org = Org(id=org_id, name=name or org_id, profile=parse_profile(profile))
    session.add(org)
    session.flush()
    return org


def get_org(session: Session, org_id: str) -> Org:
    org = session.get(Org, org_id)
    if org is None:
        known = ", ".join(session.scalars(select(Org.id).order_by(Org.id))) or "none yet"
        raise NotFound(f"no org {org_id!r} (orgs: {known})")
    return org


def set_profile(session: Session, org_id: str, profile: Any) -> Org:
    """Replace an org's profile."""
    org = get_org(session, org_id)
    org.profile = parse_profile(profile)
    return org


def list_orgs(session: Session) -> list[OrgOut]:
    return [describe_org(session, org) for org in session.scalars(select(Org).order_by(Org.id))]


def describe_org(session: Session, org: Org) -> OrgOut:
    connections = session.scalars(
        select(Connection.name).where(Connection.org_id == org.id).order_by(Connection.name)
    ).all()
    version = session.scalar(
        select(func.max(MappingVersion.version)).where(MappingVersion.org_id == org.id)
    )
    return OrgOut(
        id=org.id,
        name=org.name,
        profile=dict(org.profile or {}),
        created_at=org.created_at,
        connections=list(connections),
        mapping_version=version,
    )


def default_org(session: Session, org_id: str | None) -> str:
    """`org_id`, or the only org there is; Invalid when several could be meant."""
    if org_id:
        get_org(session, org_id)
        return org_id
    ids = list(session.scalars(select(Org.id).order_by(Org.id)))
    if len(ids) != 1:
        raise Invalid(f"name the org with --org (orgs: {', '.join(ids) or 'none yet'})")
    return ids[0]
