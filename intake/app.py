"""The FastAPI application: the webhook, meeting status, the admin API and console, health."""

from __future__ import annotations

import gc
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError

from intake import (
    admin,
    console,
    experiments_api,
    health,
    meetings,
    memory,
    review_api,
    slack_interactions,
    webhook_store,
    webhooks,
)
from intake.tracing import Tracing
from meetsync import __version__
from meetsync.models import MeetingOutput
from meetsync.settings import Settings


class Enqueuer(Protocol):
    def enqueue_extract(
        self, meeting_id: str, *, backfill: bool = False, org: str | None = None
    ) -> None: ...


SWITCH_INTERVAL_S = 0.0005


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Before serving: the start-up heap out of the collector's sight, a shorter GIL slice.

    A full (generation 2) collection walks every object the process holds (~190k: the
    app, the ORM, pydantic's validators, the OpenAPI schema) and stops the event loop and
    every thread meanwhile: 150-350 ms measured on a loaded machine, a webhook tail of its
    own whenever one falls among requests. Frozen objects are never walked again.
    """
    gc.collect()
    gc.freeze()
    # the GIL changes hands every 0.5 ms, not 5: the delivery writer's database calls release
    # it and each must win it back from a busy event loop (bench.webhook: p50 135 -> 14 ms)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    yield
    # uvicorn has answered every request by now: store and follow up what was handed over
    app.state.deliveries.close()


def create_app(settings: Settings, pipeline: Enqueuer) -> FastAPI:
    """Build the API around a settings object and whatever enqueues extraction."""
    app = FastAPI(title="meetsync", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.pipeline = pipeline
    app.state.deliveries = webhook_store.delivery_writer(app.state)
    app.include_router(webhooks.router)
    app.include_router(meetings.router)
    app.include_router(admin.router)
    app.include_router(memory.router)
    app.include_router(slack_interactions.router)
    app.include_router(review_api.router)
    app.include_router(experiments_api.router)
    console.install(app)

    @app.exception_handler(DataError)
    def unstorable(request: Request, exc: DataError) -> JSONResponse:
        # a value the database cannot hold (a NUL character, a number past its integers):
        # the request's fault, whichever route let it through
        detail = "a value in the request cannot be stored (a NUL character, a number too large)"
        return JSONResponse({"detail": detail}, status_code=422)

    app.include_router(health.router)
    app.add_middleware(Tracing)

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
