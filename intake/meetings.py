"""GET /v1/meetings/{id}: a meeting's state and what was pushed where.

Each push names its action item (`title`) and, once a re-extraction no longer found that
item, its `disposition`: `missing` (the record was kept as it is), `closed` (the
destination's `on_missing: close` finished it) or `reopened` (closed, then extracted
again). `removed_items` lists the items of the first two kinds, so a person sees that an
item disappeared and what was done about it.

Who may look: an admin of the meeting's org (its bearer token) sees all of that; whoever
holds the signed link that recaps, tasks and records carry (`?exp=…&sig=…`,
`meetsync.links`) sees only what the recap itself shows: the title, the state, and each
item's title, destination and link. Neither: 401. Another org's meeting: 404.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel
from sqlalchemy import select

from admin.tokens import org_of_token
from intake.auth import bearer
from meetsync.db.models import Meeting, OpRecord
from meetsync.db.session import session_scope
from meetsync.links import verify_meeting_link
from meetsync.masking import mask_text
from meetsync.pipeline_status import overall_status

router = APIRouter()
# a removed item's disposition → what was done with its record
OUTCOMES = {"missing": "kept", "closed": "closed"}


class Push(BaseModel):
    key: str
    provider: str
    connection: str
    action: str
    object: str | None
    state: str
    external_id: str | None
    url: str | None
    error: str | None
    destination: str | None
    title: str | None
    disposition: str | None


class RemovedItem(BaseModel):
    """An item a re-extraction no longer found, and what happened to its record."""

    key: str
    destination: str | None
    provider: str
    title: str | None
    disposition: str
    outcome: str  # `kept` or `closed`
    state: str  # of the closing write, or of the kept record's last write
    url: str | None


class MeetingStatus(BaseModel):
    id: str
    org_id: str
    meeting_id: str
    title: str
    status: str
    revision: int
    ops: dict[str, int]
    pushes: list[Push]
    removed_items: list[RemovedItem]
    error: str | None


class ItemLink(BaseModel):
    """One write as the recap shows it: what, where, and its link."""

    provider: str
    title: str | None
    state: str
    url: str | None


class MeetingView(BaseModel):
    """The public view a signed link opens: no errors, connections or org internals."""

    id: str
    title: str
    status: str
    items: list[ItemLink]


@router.get(
    "/v1/meetings/{meeting_id}",
    response_model=MeetingStatus | MeetingView,
    responses={
        401: {"description": "neither the org's admin token nor a valid signed link"},
        404: {"description": "no such meeting in the token's org"},
    },
)
def meeting_status(
    meeting_id: str,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    exp: Annotated[str | None, Query(max_length=20, description="signed link: expiry")] = None,
    sig: Annotated[str | None, Query(max_length=128, description="signed link: HMAC")] = None,
) -> MeetingStatus | MeetingView:
    """A meeting's state: in full for its org's admin, as the recap shows it for a link."""
    settings = request.app.state.settings
    challenge = {"WWW-Authenticate": "Bearer"}
    public = credentials is None
    if public and not verify_meeting_link(settings, meeting_id, exp, sig):
        raise HTTPException(401, "an admin token or a valid signed link is required", challenge)
    with session_scope(settings.database_url) as session:
        org_id = None
        if credentials is not None:
            token = org_of_token(session, credentials.credentials)
            if token is None:
                raise HTTPException(401, "this admin token is not valid", challenge)
            org_id = token.org_id
        meeting = session.get(Meeting, meeting_id)
        if meeting is None or (org_id is not None and meeting.org_id != org_id):
            raise HTTPException(404, "no such meeting")
        ops = session.scalars(
            select(OpRecord).where(OpRecord.meeting_id == meeting_id).order_by(OpRecord.created_at)
        ).all()
        states = Counter(op.state for op in ops)
        if public:
            return MeetingView(
                id=meeting.id,
                title=meeting.title,
                status=overall_status(meeting.status, states),
                items=[
                    ItemLink(
                        provider=op.connector,
                        title=(op.item or {}).get("title"),
                        state=op.state,
                        url=op.url,
                    )
                    for op in ops
                ],
            )
        return MeetingStatus(
            id=meeting.id,
            org_id=meeting.org_id,
            meeting_id=meeting.external_id,
            title=meeting.title,
            status=overall_status(meeting.status, states),
            revision=meeting.revision,
            ops=dict(states),
            pushes=[
                Push(
                    key=op.key,
                    provider=op.connector,
                    connection=op.connection,
                    action=op.action,
                    object=op.object or op.target.get("object"),
                    state=op.state,
                    external_id=op.external_id,
                    url=op.url,
                    error=mask_text(op.last_error) if op.last_error else None,
                    destination=op.destination,
                    title=(op.item or {}).get("title"),
                    disposition=op.disposition,
                )
                for op in ops
            ],
            removed_items=[
                RemovedItem(
                    key=op.key,
                    destination=op.destination,
                    provider=op.connector,
                    title=(op.item or {}).get("title"),
                    disposition=op.disposition,
                    outcome=OUTCOMES[op.disposition],
                    state=op.state,
                    url=op.url,
                )
                for op in ops
                if op.disposition in OUTCOMES
            ],
            error=mask_text(meeting.error) if meeting.error else None,
        )
