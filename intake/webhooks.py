"""POST /v1/webhooks/meeting-completed: verify, dedupe, store, enqueue, answer 202."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from admin.meeting_store import UnknownOrg, store_meeting
from intake.deliveries import Written, writer_for
from intake.signatures import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, verify
from meetsync.db.models import WebhookEvent
from meetsync.models import MeetingOutput
from meetsync.settings import Settings

router = APIRouter()

EVENT_HEADER = "x-meetsync-event-id"
MAX_EVENT_ID = 200


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
        200: {"description": "an older revision than the stored one: acknowledged, ignored"},
        401: {"description": "missing, bad or expired signature (error.code says which)"},
        409: {"description": "the same delivery is being processed concurrently; retry"},
        404: {"description": "unknown org"},
        413: {"description": "body too large"},
        422: {"description": "invalid body"},
    },
)
async def meeting_completed(request: Request) -> JSONResponse:
    settings = request.app.state.settings
    try:
        body = await read_limited(request, settings.webhook_max_body_bytes)
    except BodyTooLarge:
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
    if len(event_id) > MAX_EVENT_ID:
        errors = [{"path": EVENT_HEADER, "message": f"at most {MAX_EVENT_ID} characters"}]
        return _problem(422, "invalid_event_id", "the event id is too long", errors=errors)
    # one writer thread per process commits deliveries in batches (the tail: intake.deliveries)
    writer = writer_for(request.app.state, settings.database_url)
    pipeline = request.app.state.pipeline
    try:
        answer: JSONResponse = await writer.write(
            lambda session: _accept(session, settings, pipeline, meeting, event_id)
        )
    except Concurrent:
        return _problem(409, "concurrent_delivery", "the same delivery is being processed; retry")
    return answer


class Concurrent(Exception):
    """A concurrent delivery of the same event or meeting won the race (and enqueued)."""


class BodyTooLarge(Exception):
    """The body is (or announces itself as) larger than the limit."""


async def read_limited(request: Request, limit: int) -> bytes:
    """The raw body, refused early by Content-Length and cut off mid-stream past `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _accept(
    session: Session, settings: Settings, pipeline: Any, meeting: MeetingOutput, event_id: str
) -> Written[JSONResponse]:
    """Dedupe and store one delivery in `session`; its answer, and the enqueue after commit."""
    try:
        seen = session.get(WebhookEvent, event_id)
        if seen is not None:
            return Written(
                JSONResponse(
                    seen.response,
                    status_code=seen.status_code,
                    headers={"X-Meetsync-Replay": "true"},
                )
            )
        stored = store_meeting(session, meeting)
        answer = {
            "meeting_id": stored.meeting_id,
            "status": "stale" if stored.stale else "accepted",
            "status_url": f"{settings.public_base_url}/v1/meetings/{stored.meeting_id}",
        }
        status_code = 200 if stored.stale else 202
        session.add(
            WebhookEvent(
                event_id=event_id,
                org_id=meeting.org_id,
                meeting_id=stored.meeting_id,
                status_code=status_code,
                response=answer,
            )
        )
        session.flush()
    except UnknownOrg:
        return Written(_problem(404, "unknown_org", f"org {meeting.org_id!r} is not set up"))
    except IntegrityError:
        # a concurrent delivery of the same event or meeting won the race; it enqueued
        raise Concurrent from None
    if stored.stale:
        # an older revision than the stored one: acknowledged, so the sender stops retrying
        return Written(JSONResponse(answer, status_code=200))
    return Written(
        JSONResponse(answer, status_code=202, headers={"Location": answer["status_url"]}),
        then=lambda: pipeline.enqueue_extract(answer["meeting_id"]),
    )


def json_body(payload: MeetingOutput) -> bytes:
    """Compact JSON of a payload, as the notes pipeline sends it."""
    return json.dumps(payload.model_dump(mode="json"), separators=(",", ":")).encode()
