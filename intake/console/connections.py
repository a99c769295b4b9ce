"""The connections page: health, test now, pause and resume, add and rotate credentials.

Credentials go in through password fields and are sealed at once; no page shows them back,
not even the form that refused them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from admin import connections
from admin.errors import AdminError, NotFound
from intake.console.render import message, page, pairs, store
from intake.console.session import ConsoleSession, checked_form, current

router = APIRouter()
Signed = Annotated[ConsoleSession, Depends(current)]


@router.get("/connections", response_class=HTMLResponse)
def connections_page(
    request: Request, admin: Signed, done: str = "", error: str | None = None, status: int = 200
) -> Response:
    with store(request) as (session, settings):
        found = connections.health(session, settings, admin.org_id)
    return page(
        request,
        "connections.html",
        status,
        connections=found,
        providers=connections.providers(),
        done=done,
        error=error,
    )


@router.post("/connections/{name}/test", response_class=HTMLResponse)
async def test_now(name: str, request: Request) -> Response:
    """Call the provider now; show each probe and the provider's words when one fails."""
    await checked_form(request)
    admin: ConsoleSession = request.state.console
    try:
        with store(request) as (session, settings):
            report = connections.test_connection(session, settings, name, admin.org_id)
    except NotFound as exc:
        return message(request, str(exc), 404)
    return page(request, "_test_report.html", report=report)


@router.post("/connections/{name}/pause", response_class=HTMLResponse)
async def pause(name: str, request: Request) -> Response:
    data = await checked_form(request)
    return _change(request, name, "paused", paused=True, reason=data.get("reason") or None)


@router.post("/connections/{name}/resume", response_class=HTMLResponse)
async def resume(name: str, request: Request) -> Response:
    await checked_form(request)
    return _change(request, name, "resumed", paused=False)


@router.post("/connections/{name}/rotate", response_class=HTMLResponse)
async def rotate(name: str, request: Request) -> Response:
    """Replace the credentials; the connection keeps its provider, endpoints and options."""
    data = await checked_form(request)
    admin: ConsoleSession = request.state.console
    try:
        credentials = pairs(data.get("credentials", ""))
        with store(request) as (session, settings):
            connections.rotate_credentials(session, settings, name, admin.org_id, credentials)
    except NotFound as exc:
        return message(request, str(exc), 404)
    except (AdminError, ValueError) as exc:
        return connections_page(request, admin, error=f"{name}: {exc}", status=422)
    return RedirectResponse(f"/console/connections?done=rotated+{name}", status_code=303)


@router.post("/connections", response_class=HTMLResponse)
async def add(request: Request) -> Response:
    data = await checked_form(request)
    admin: ConsoleSession = request.state.console
    name = data.get("name", "").strip()
    try:
        credentials = pairs(data.get("credentials", ""))
        options = pairs(data.get("options", ""))
        with store(request) as (session, settings):
            connections.add_connection(
                session,
                settings,
                org_id=admin.org_id,
                name=name,
                provider=data.get("provider", ""),
                credentials=credentials,
                base_url=data.get("base_url", "").strip() or None,
                options=dict(options),
            )
    except (AdminError, ValueError) as exc:
        return connections_page(request, admin, error=f"not added: {exc}", status=422)
    return RedirectResponse(f"/console/connections?done=added+{name}", status_code=303)


def _change(
    request: Request, name: str, done: str, *, paused: bool, reason: str | None = None
) -> Response:
    admin: ConsoleSession = request.state.console
    try:
        with store(request) as (session, _):
            connections.set_paused(session, name, admin.org_id, paused=paused, reason=reason)
    except NotFound as exc:
        return message(request, str(exc), 404)
    return RedirectResponse(f"/console/connections?done={done}+{name}", status_code=303)
