"""The FastAPI application: the webhook, meeting status, the admin API and console, health."""

from __future__ import annotations

from typing import Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError

from intake import admin, console, meetings, memory, review_api, slack_interactions, webhooks
from meetsync import __version__
from meetsync.models import MeetingOutput
from meetsync.settings import Settings


class Enqueuer(Protocol):
    def enqueue_extract(self, meeting_id: str, *, backfill: bool = False) -> None: ...


def create_app(settings: Settings, pipeline: Enqueuer) -> FastAPI:
    """Build the API around a settings object and whatever enqueues extraction."""
    app = FastAPI(title="meetsync", version=__version__)
    app.state.settings = settings
    app.state.pipeline = pipeline
    app.include_router(webhooks.router)
    app.include_router(meetings.router)
    app.include_router(admin.router)
    app.include_router(memory.router)
    app.include_router(slack_interactions.router)
    app.include_router(review_api.router)
    console.install(app)

    @app.exception_handler(DataError)
    def unstorable(request: Request, exc: DataError) -> JSONResponse:
        # a value the database cannot hold (a NUL character, a number past its integers):
        # the request's fault, whichever route let it through
        detail = "a value in the request cannot be stored (a NUL character, a number too large)"
        return JSONResponse({"detail": detail}, status_code=422)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    schema = app.openapi()
    schema.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in (
        MeetingOutput.model_json_schema(ref_template="#/components/schemas/{model}")
        .pop("$defs", {})
        .items()
    ):
        schema["components"]["schemas"][name] = definition
    schema["components"]["schemas"]["MeetingOutput"] = MeetingOutput.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    schema["components"]["schemas"]["MeetingOutput"].pop("$defs", None)
    return app
