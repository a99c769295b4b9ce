"""Dead letters: the org's failed, dead and paused ops with the provider's reason, retried."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from admin import dead_letters
from admin.errors import NotFound
from intake.console.render import message, page, store
from intake.console.session import ConsoleSession, checked_form, current

router = APIRouter()
Signed = Annotated[ConsoleSession, Depends(current)]


@router.get("/dead-letters", response_class=HTMLResponse)
def dead_letters_page(request: Request, admin: Signed, retried: int = -1) -> Response:
    with store(request) as (session, _):
        letters = dead_letters.list_dead(session, admin.org_id)
        failed = dead_letters.failed_meetings(session, admin.org_id)
    return page(request, "dead_letters.html", letters=letters, failed=failed, retried=retried)


@router.post("/dead-letters/retry", response_class=HTMLResponse)
async def retry(request: Request) -> Response:
    """Put the chosen ops back in line; an op that may have been written is found first."""
    data = await checked_form(request)
    admin: ConsoleSession = request.state.console
    keys = [k for k in data.get("keys", "").split(",") if k]
    if not keys:
        return message(request, "Choose a dead letter to retry.", 422)
    try:
        with store(request) as (session, _):
            replayed = dead_letters.retry(session, admin.org_id, keys)
    except NotFound as exc:
        return message(request, str(exc), 404)
    enqueue = getattr(request.app.state.pipeline, "enqueue_ops", None)
    if replayed and enqueue is not None:
        enqueue(replayed)  # without a broker here, the sweeper pushes them shortly
    return RedirectResponse(f"/console/dead-letters?retried={len(replayed)}", status_code=303)
