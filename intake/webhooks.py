"""POST /v1/webhooks/meeting-completed: verify, dedupe, store, enqueue, answer 202."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from intake.signatures import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, verify
from intake.store import UnknownOrg, store_meeting
from meetsync.db.models import WebhookEvent
from meetsync.db.session import session_scope
from meetsync.models import MeetingOutput

router = APIRouter()

EVENT_HEADER = "x-meetsync-event-id"


def _problem(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


@router.post(
    "/v1/webhooks/meeting-completed",
    status_code=202,
    summary="A meeting's transcript is ready",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/MeetingOutput"}}
            },
        },
        "parameters": [
            {
                "name": "X-Meetsync-Timestamp",
                "in": "header",
                "required": True,
                "schema": {"type": "string"},
                "description": "unix seconds",
            },
            {
                "name": "X-Meetsync-Signature",
                "in": "header",
                "required": True,
                "schema": {"type": "string"},
                "description": "v1=<hex HMAC-SHA256 of 'ts.body'>",
            },
            {
                "name": "X-Meetsync-Event-Id",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": "delivery id for deduplication",
            },
        ],
    },
    responses={
        401: {"description": "bad signature"},
        404: {"description": "unknown org"},
        413: {"description": "body too large"},
        422: {"description": "invalid body"},
    },
)
async def meeting_completed(request: Request) -> JSONResponse:
    settings = request.app.state.settings
    body = await request.body()
    if len(body) > settings.webhook_max_body_bytes:
        return _problem(413, "body_too_large", f"limit is {settings.webhook_max_body_bytes} bytes")
    secrets = [settings.webhook_secret.get_secret_value()]
    if settings.webhook_secret_previous is not None:
        secrets.append(settings.webhook_secret_previous.get_secret_value())
    try:
        verify(
            secrets,
            request.headers.get(TIMESTAMP_HEADER),
            request.headers.get(SIGNATURE_HEADER),
            body,
            tolerance_s=settings.webhook_tolerance_s,
        )
    except SignatureError as exc:
        return _problem(401, exc.reason, exc.message)
    try:
        meeting = MeetingOutput.model_validate_json(body)
    except ValidationError as exc:
        errors = [
            {"path": ".".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        return _problem(
            422, "invalid_payload", "the body does not fit MeetingOutput", errors=errors
        )
    event_id = (
        request.headers.get(EVENT_HEADER) or meeting.event_id or hashlib.sha256(body).hexdigest()
    )
    return _accept(request, meeting, event_id)


def _accept(request: Request, meeting: MeetingOutput, event_id: str) -> JSONResponse:
    settings, pipeline = request.app.state.settings, request.app.state.pipeline
    try:
        with session_scope(settings.database_url) as session:
            seen = session.get(WebhookEvent, event_id)
            if seen is not None:
                return JSONResponse(
                    seen.response,
                    status_code=seen.status_code,
                    headers={"X-Meetsync-Replay": "true"},
                )
            stored = store_meeting(session, meeting)
            answer = {
                "meeting_id": stored.meeting_id,
                "status": "accepted",
                "status_url": f"{settings.public_base_url}/v1/meetings/{stored.meeting_id}",
            }
            session.add(
                WebhookEvent(
                    event_id=event_id,
                    org_id=meeting.org_id,
                    meeting_id=stored.meeting_id,
                    status_code=202,
                    response=answer,
                )
            )
    except UnknownOrg:
        return _problem(404, "unknown_org", f"org {meeting.org_id!r} is not set up")
    except IntegrityError:
        # a concurrent delivery of the same event or meeting won the race; it enqueued
        return _problem(409, "concurrent_delivery", "the same delivery is being processed; retry")
    pipeline.enqueue_extract(answer["meeting_id"])
    return JSONResponse(answer, status_code=202, headers={"Location": answer["status_url"]})


def json_body(payload: MeetingOutput) -> bytes:
    """Compact JSON of a payload, as the notes pipeline sends it."""
    return json.dumps(payload.model_dump(mode="json"), separators=(",", ":")).encode()
