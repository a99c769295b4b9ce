"""Sign-in, sign-out and the console's home page."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from admin import orgs
from admin.tokens import org_of_token
from intake.console import session as sessions
from intake.console.render import page
from intake.console.session import ConsoleSession, current
from meetsync.db.session import session_scope
from meetsync.settings import Settings

router = APIRouter()
Signed = Annotated[ConsoleSession, Depends(current)]


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
def home(request: Request, admin: Signed) -> Response:
    """The org at a glance: its connections and mapping version, and where to go next."""
    settings: Settings = request.app.state.settings
    with session_scope(settings.database_url) as db:
        org = orgs.describe_org(db, orgs.get_org(db, admin.org_id))
    return page(request, "home.html", org=org)


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_form(request: Request, reason: str = "") -> Response:
    nonce = secrets.token_urlsafe(16)
    settings: Settings = request.app.state.settings
    try:
        token = sessions.signin_csrf(settings, nonce)
    except sessions.SignInRequired as exc:
        return page(request, "sign_in.html", 503, notice=sessions.REASONS[exc.reason], csrf="")
    response = page(
        request, "sign_in.html", notice=sessions.REASONS.get(reason), csrf=token, error=None
    )
    sessions.set_pre_session(request, response, nonce)
    return response


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request) -> Response:
    """Exchange the org's admin token for a session cookie."""
    settings: Settings = request.app.state.settings
    data = await sessions.form(request)
    nonce = request.cookies.get(sessions.PRE_COOKIE, "")
    expected = sessions.signin_csrf(settings, nonce) if nonce else ""
    if not nonce or not hmac.compare_digest(data.get("csrf", "").encode(), expected.encode()):
        return _sign_in_again(
            request, "This sign-in form was stale or not the console's. Try again.", 403
        )
    with session_scope(settings.database_url) as db:
        row = org_of_token(db, data.get("token", "").strip())
        found = None if row is None else (row.org_id, row.id, row.label)
    if found is None:
        return _sign_in_again(
            request, "That admin token is not valid (mistyped, revoked, or never minted).", 401
        )
    session = sessions.new_session(*found)
    response = RedirectResponse("/console", status_code=303)
    sessions.set_session(request, response, sessions.encode(settings, session))
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    await sessions.checked_form(request)
    response = RedirectResponse("/console/sign-in?reason=signed-out", status_code=303)
    response.delete_cookie(sessions.COOKIE, path="/console")
    return response


def _sign_in_again(request: Request, error: str, status: int) -> Response:
    nonce = secrets.token_urlsafe(16)
    token = sessions.signin_csrf(request.app.state.settings, nonce)
    response = page(request, "sign_in.html", status, notice=None, error=error, csrf=token)
    sessions.set_pre_session(request, response, nonce)
    return response
