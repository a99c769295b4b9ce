"""`/healthz` (alive), `/readyz` (database, migrations, broker, Redis) and `/metrics`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from meetsync import health, metrics

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process answers: nothing else is checked (a liveness probe must not flap)."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """503 with each check's answer until the database (at head), broker and Redis answer."""
    answers = await run_in_threadpool(health.readiness, request.app.state.settings)
    ready = health.ready(answers)
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": answers},
        status_code=200 if ready else 503,
    )


@router.get("/metrics")
async def scrape(request: Request) -> Response:
    """This process's metrics and the store's gauges, in Prometheus' text format."""
    settings = request.app.state.settings
    registry = metrics.registry([metrics.StoreCollector(settings.database_url)])
    body, content_type = await run_in_threadpool(metrics.exposition, registry)
    return Response(body, media_type=content_type)
