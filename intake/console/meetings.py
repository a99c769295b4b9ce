"""Meetings: a searchable list, each meeting's timeline, and re-running one."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Protocol

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from admin import meetings
from admin.errors import NotFound
from intake.console.render import message, page, store
from intake.console.session import ConsoleSession, checked_form, current
from intake.meetings import overall_status

router = APIRouter()
Signed = Annotated[ConsoleSession, Depends(current)]


class Extracts(Protocol):
    def enqueue_extract(self, meeting_id: str, *, backfill: bool = False) -> None: ...


@router.get("/meetings", response_class=HTMLResponse)
def meetings_page(request: Request, admin: Signed, q: str = "") -> Response:
    with store(request) as (session, _):
        found = meetings.list_meetings(session, admin.org_id, q[:200] or None)
    shown = [(m, overall_status(m.status, Counter(m.ops))) for m in found]
    return page(request, "meetings.html", meetings=shown, q=q)


@router.get("/meetings/{meeting_id}", response_class=HTMLResponse)
def timeline(meeting_id: str, request: Request, admin: Signed, rerun: int = 0) -> Response:
    try:
        with store(request) as (session, _):
            found = meetings.timeline(session, admin.org_id, meeting_id)
    except NotFound as exc:
        return message(request, str(exc), 404)
    status = overall_status(found.meeting.status, Counter(found.meeting.ops))
    return page(request, "timeline.html", t=found, state=status, rerun=rerun)


@router.post("/meetings/{meeting_id}/rerun", response_class=HTMLResponse)
async def rerun(meeting_id: str, request: Request) -> Response:
    """Extract, plan and push the meeting again; the ledger writes nothing twice."""
    await checked_form(request)
    admin: ConsoleSession = request.state.console
    try:
        with store(request) as (session, _):
            row = meetings.mark_rerun(session, admin.org_id, meeting_id)
            backfill = row.source == "backfill"
    except NotFound as exc:
        return message(request, str(exc), 404)
    pipeline: Extracts = request.app.state.pipeline
    pipeline.enqueue_extract(meeting_id, backfill=backfill)
    return RedirectResponse(f"/console/meetings/{meeting_id}?rerun=1", status_code=303)
