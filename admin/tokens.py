"""Admin tokens: minted once, shown once, stored as a SHA-256 digest, each scoped to one org.

A token carries 256 random bits, so a fast digest is as safe as a slow password hash here
(nobody can guess their way through 2^256) and costs nothing on every API request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from admin.errors import NotFound
from admin.orgs import get_org
from meetsync.db.models import AdminToken, utcnow

PREFIX = "msk_"


@dataclass(frozen=True)
class Minted:
    id: str
    org_id: str
    token: str  # the only time the plain token exists outside its holder


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def mint_token(session: Session, org_id: str, label: str = "") -> Minted:
    """A new admin token for an org; only its digest is stored."""
    get_org(session, org_id)
    token = PREFIX + secrets.token_urlsafe(32)
    row = AdminToken(org_id=org_id, token_hash=digest(token), label=label)
    session.add(row)
    session.flush()
    return Minted(id=row.id, org_id=org_id, token=token)


def org_of_token(session: Session, token: str) -> AdminToken | None:
    """The live token row a presented token matches, or None."""
    if not token.startswith(PREFIX):
        return None
    row = session.scalars(select(AdminToken).where(AdminToken.token_hash == digest(token))).first()
    if row is None or row.revoked_at is not None:
        return None
    return row


def revoke_token(session: Session, org_id: str, token_id: str) -> None:
    row = session.get(AdminToken, token_id)
    if row is None or row.org_id != org_id:
        raise NotFound(f"org {org_id!r} has no token {token_id!r}")
    row.revoked_at = row.revoked_at or utcnow()


def list_tokens(session: Session, org_id: str) -> list[AdminToken]:
    return list(
        session.scalars(
            select(AdminToken).where(AdminToken.org_id == org_id).order_by(AdminToken.created_at)
        )
    )


def live_token(session: Session, token_id: str) -> AdminToken | None:
    """The token row of a console session, unless it was revoked since."""
    row = session.get(AdminToken, token_id)
    return row if row is not None and row.revoked_at is None else None
