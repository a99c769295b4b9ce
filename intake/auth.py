"""Admin API authentication: a bearer token minted for one org, checked against its hash.

No token, or one that matches nothing: 401. A valid token used on another org's routes: 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from admin.tokens import org_of_token
from meetsync.db.session import session_scope

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="AdminToken",
    description="An org's admin token, minted by `meetsync orgs token ORG`.",
)


@dataclass(frozen=True)
class Admin:
    """Who is calling: the org their token is for, and which token."""

    org_id: str
    token_id: str
    label: str

    @property
    def author(self) -> str:
        """How mapping versions record this caller."""
        return f"{self.label or 'admin token'} ({self.token_id[:8]})"


def org_admin(
    org_id: str,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Admin:
    """The caller, if their token is for the org in the path."""
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise HTTPException(401, "an admin token is required (Authorization: Bearer …)", challenge)
    with session_scope(request.app.state.settings.database_url) as session:
        row = org_of_token(session, credentials.credentials)
        if row is None:
            raise HTTPException(401, "this admin token is not valid", challenge)
        if row.org_id != org_id:
            raise HTTPException(403, f"this admin token is not for org {org_id!r}")
        return Admin(org_id=row.org_id, token_id=row.id, label=row.label)


OrgAdmin = Annotated[Admin, Depends(org_admin)]
