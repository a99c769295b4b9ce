"""The review queue: the org's held changes, approved, edited, skipped or answered here.

Every decision is `admin.review`'s, as from Slack and the admin API, made by the signed-in
admin; what it releases is enqueued as those do (`follow_up`), and a change decided or
expired meanwhile is said so, with nothing done.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from admin import meetings, review
from admin.errors import NotFound
from admin.review import Choice, Decided, EditField, Reviewer, follow_up
from intake.console.render import message, page, store
from intake.console.session import ConsoleSession, checked_form, current

router = APIRouter()
Signed = Annotated[ConsoleSession, Depends(current)]
DONE = {"approve": "Approved", "skip": "Skipped", "edit": "Edited", "answer": "Answered"}
MENTION = re.compile(r"<@(\w+)>")  # Slack's markup for a user, in the services' messages


@router.get("/review", response_class=HTMLResponse)
def review_page(request: Request, admin: Signed, done: str = "") -> Response:
    """What waits for a decision, by meeting, oldest first."""
    return _queue(request, admin, done=done)


def _queue(
    request: Request, admin: ConsoleSession, *, done: str = "", error: str = "", status: int = 200
) -> Response:
    settings = request.app.state.settings
    waiting = review.pending(settings, admin.org_id)
    by_meeting: dict[str, list[dict[str, Any]]] = {}
    for item in waiting:
        by_meeting.setdefault(item["meeting_id"], []).append(item)
    with store(request) as (session, _):
        titles = {m: meetings.get_meeting(session, admin.org_id, m).title for m in by_meeting}
    shown = [(m, titles[m], items) for m, items in by_meeting.items()]
    note = f"{DONE[done]}." if done in DONE else None
    if done.startswith("all:") and done[4:].isdigit():
        note = f"Approved {done[4:]} change(s)."
    return page(request, "review.html", status, meetings=shown, note=note, error=error or None)


@router.post("/review/meetings/{meeting_id}/approve-all", response_class=HTMLResponse)
async def approve_all(meeting_id: str, request: Request) -> Response:
    """Approve every change of one meeting (questions keep waiting for their answers)."""
    await checked_form(request)
    admin: ConsoleSession = request.state.console
    try:
        with store(request) as (session, _):
            meetings.get_meeting(session, admin.org_id, meeting_id)
    except NotFound as exc:
        return message(request, str(exc), 404)
    settings = request.app.state.settings
    decided = await run_in_threadpool(review.approve_all, settings, meeting_id, _reviewer(admin))
    follow_up(request.app.state.pipeline, decided)
    if not decided.ok:
        return _queue(request, admin, error=_plain(decided.message), status=409)
    done = f"all:{len(decided.release)}"
    return RedirectResponse(f"/console/review?done={done}", status_code=303)


@router.get("/review/{request_id}/edit", response_class=HTMLResponse)
def edit_form(request_id: str, request: Request, admin: Signed) -> Response:
    """The Edit form, prefilled with the proposal (the Slack modal's fields)."""
    found = review.get(request.app.state.settings, admin.org_id, request_id)
    if found is None:
        return message(request, f"no review request {request_id!r} in this org", 404)
    fields = review.edit_fields(request.app.state.settings, request_id, _reviewer(admin))
    if isinstance(fields, Decided):
        return _queue(request, admin, error=_plain(fields.message), status=409)
    values = {f.name: f.proposed for f in fields}
    return _edit_page(request, found, fields, values)


@router.post("/review/{request_id}/edit", response_class=HTMLResponse)
async def edit(request_id: str, request: Request) -> Response:
    """Write the admin's values instead, once the provider would take them."""
    data = await checked_form(request)
    admin: ConsoleSession = request.state.console
    settings, who = request.app.state.settings, _reviewer(admin)
    found = review.get(settings, admin.org_id, request_id)
    if found is None:
        return message(request, f"no review request {request_id!r} in this org", 404)
    fields = await run_in_threadpool(review.edit_fields, settings, request_id, who)
    if isinstance(fields, Decided):
        return _queue(request, admin, error=_plain(fields.message), status=409)
    values = {f.name: data.get(f.block, "") for f in fields}
    decided = await run_in_threadpool(review.edit, settings, request_id, values, who)
    follow_up(request.app.state.pipeline, decided)
    if decided.ok:
        return RedirectResponse("/console/review?done=edit", status_code=303)
    status = 422 if decided.errors else 409
    problem = _plain(decided.message)
    return _edit_page(request, found, fields, values, decided.errors, problem, status)


# after the Edit routes, so that "edit" is never taken for a choice
@router.post("/review/{request_id}/{choice}", response_class=HTMLResponse)
async def decide(request_id: str, choice: str, request: Request) -> Response:
    """Approve or skip one change (answer a question with the choice sent)."""
    data = await checked_form(request)
    admin: ConsoleSession = request.state.console
    if choice not in ("approve", "skip", "answer") or not _owned(request, admin, request_id):
        return message(request, f"no review request {request_id!r} in this org", 404)
    settings, who = request.app.state.settings, _reviewer(admin)
    if choice == "answer":
        chosen = data.get("choice", "")
        decided = await run_in_threadpool(review.answer, settings, request_id, chosen, who)
    else:
        verdict: Choice = "approve" if choice == "approve" else "skip"
        decided = await run_in_threadpool(review.decide, settings, request_id, verdict, who)
    return _after(request, admin, decided, choice)


def _after(request: Request, admin: ConsoleSession, decided: Decided, choice: str) -> Response:
    follow_up(request.app.state.pipeline, decided)
    if not decided.ok:
        return _queue(request, admin, error=_plain(decided.message), status=409)
    return RedirectResponse(f"/console/review?done={choice}", status_code=303)


def _edit_page(
    request: Request,
    found: dict[str, Any],
    fields: list[EditField],
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    problem: str | None = None,
    status: int = 200,
) -> Response:
    context = {"r": found, "fields": fields, "values": values, "errors": errors or {}}
    return page(request, "review_edit.html", status, problem=problem, **context)


def _owned(request: Request, admin: ConsoleSession, request_id: str) -> bool:
    return review.get(request.app.state.settings, admin.org_id, request_id) is not None


def _reviewer(admin: ConsoleSession) -> Reviewer:
    """The signed-in admin, recorded as who decided (as the API records its token)."""
    return Reviewer(email=admin.author, admin=True)


def _plain(text: str) -> str:
    return MENTION.sub(r"\1", text)
