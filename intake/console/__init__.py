"""The admin console under /console: server-rendered pages (Jinja2 and htmx) on the same
admin services as the API, for one org at a time, signed in with its admin token."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from intake.console import (
    connections,
    dead_letters,
    experiments,
    mappings,
    meetings,
    pages,
    review,
)
from intake.console.render import HERE, message
from intake.console.session import Forbidden, SignInRequired, TooLarge

# scripts and styles from the console itself only; no frames, no other origin's forms
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class SecurityHeaders:
    """The console's security headers on its own pages (a pure ASGI middleware: nothing
    per request elsewhere; `@app.middleware("http")` cost every webhook a task and a copy)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/console"):
            await self.app(scope, receive, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, secured)


def install(app: FastAPI) -> None:
    """Serve the console from `app` under /console."""
    for module in (pages, connections, mappings, meetings, review, dead_letters, experiments):
        app.include_router(module.router, prefix="/console", include_in_schema=False)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")

    @app.exception_handler(SignInRequired)
    def sign_in(request: Request, exc: SignInRequired) -> Response:
        target = "/console/sign-in" + (
            f"?{urlencode({'reason': exc.reason})}" if exc.reason else ""
        )
        if request.headers.get("HX-Request"):
            return Response(status_code=200, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(Forbidden)
    def forged(request: Request, exc: Forbidden) -> Response:
        text = (
            "This form did not carry the console's CSRF token (a stale page, or a form sent "
            "from elsewhere), so nothing was changed. Reload the page and try again."
        )
        return message(request, text, 403)

    @app.exception_handler(TooLarge)
    def too_large(request: Request, exc: TooLarge) -> Response:
        return message(request, "That form is too large for the console; nothing was saved.", 413)

    app.add_middleware(SecurityHeaders)
