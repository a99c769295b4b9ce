"""The FastAPI application: the webhook, meeting status, health."""

from __future__ import annotations

from typing import Protocol

from fastapi import FastAPI

from intake import admin, experiments_api, meetings, review_api, slack_interactions, webhooks
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
    app.include_router(slack_interactions.router)
    app.include_router(review_api.router)
    app.include_router(experiments_api.router)

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
