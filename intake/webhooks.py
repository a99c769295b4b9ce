"""POST /v1/webhooks/meeting-completed: verify, dedupe, store, enqueue, answer 202.

Signed with Standard Webhooks (or, while `webhook_scheme` allows it, the legacy
X-Meetsync headers: `intake.signatures`). A delivery whose id was answered before gets that
answer again and nothing more. A signature accepted once is remembered for its time window
and refused after that whatever the id beside it, so a captured delivery resent under a new
id never reaches extraction nor any write.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from admin.meeting_store import UnknownOrg, store_meeting
from intake.deliveries import DeliveryWriter, Overloaded, Refused, Unstored, Written
from intake.signatures import (
    SIGNATURE_HEADER,
    STANDARD_ID_HEADER,
    STANDARD_SIGNATURE_HEADER,
    STANDARD_TIMESTAMP_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    verify,
    verify_standard,
)
from meetsync.db.models import WebhookEvent, WebhookSignature
from meetsync.links import meeting_link
from meetsync.models import MeetingOutput
from meetsync.settings import Settings

router = APIRouter()

EVENT_HEADER = "x-meetsync-event-id"
MAX_EVENT_ID = 200


RETRY_AFTER = {"Retry-After": "1"}


def _problem(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, **extra}}
    return JSONResponse(body, status_code=status, headers=headers)


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
                "name": "webhook-id",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": "Standard Webhooks: the delivery's id (signed; deduplicates)",
            },
            {
                "name": "webhook-timestamp",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": "Standard Webhooks: unix seconds",
            },
            {
                "name": "webhook-signature",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": "Standard Webhooks: v1,<base64 HMAC-SHA256 of 'id.ts.body'>, "
                "space-separated for rotation",
            },
            {
                "name": "X-Meetsync-Timestamp",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": "legacy scheme: unix seconds",
            },
            {
                "name": "X-Meetsync-Signature",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": "legacy scheme: v1=<hex HMAC-SHA256 of 'ts.body'>",
            },
            {
                "name": "X-Meetsync-Event-Id",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": "legacy scheme: delivery id for deduplication",
            },
        ],
    },
    responses={
        200: {"description": "an older revision than the stored one: acknowledged, ignored"},
        401: {"description": "missing, bad, expired or replayed signature (error.code says which)"},
        409: {"description": "the same delivery is being processed concurrently; retry"},
        404: {"description": "unknown org"},
        413: {"description": "body too large"},
        422: {"description": "invalid body"},
        503: {"description": "overloaded or not stored; retry after Retry-After seconds"},
    },
)
async def meeting_completed(request: Request) -> JSONResponse:
    settings = request.app.state.settings
    try:
        body = await read_limited(request, settings.webhook_max_body_bytes)
    except BodyTooLarge:
        return _problem(413, "body_too_large", f"limit is {settings.webhook_max_body_bytes} bytes")
    try:
        fingerprint, signed_id = check_signature(settings, request.headers, body)
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
        signed_id
        or request.headers.get(EVENT_HEADER)
        or meeting.event_id
        or hashlib.sha256(body).hexdigest()
    )
    if len(event_id) > MAX_EVENT_ID:
        errors = [{"path": EVENT_HEADER, "message": f"at most {MAX_EVENT_ID} characters"}]
        return _problem(422, "invalid_event_id", "the event id is too long", errors=errors)
    # one writer thread per app stores deliveries in batches (the tail: intake.deliveries)
    writer: DeliveryWriter = request.app.state.deliveries
    work = partial(_accept, request.app.state, meeting, event_id, fingerprint)
    try:
        answer: JSONResponse = await writer.write(work)
    except Overloaded:
        return _problem(
            503, "overloaded", "too many deliveries at once; retry", headers=RETRY_AFTER
        )
    except Unstored:
        return _problem(
            503, "not_stored", "the delivery could not be stored; retry", headers=RETRY_AFTER
        )
    except IntegrityError:
        # a concurrent delivery of the same event or meeting won the race twice over
        return _problem(409, "concurrent_delivery", "the same delivery is being processed; retry")
    return answer


def check_signature(
    settings: Settings, headers: Mapping[str, str], body: bytes
) -> tuple[str, str | None]:
    """(fingerprint of the accepted signature, the signed delivery id if the scheme signs
    one); SignatureError when no scheme the settings allow signed this delivery."""
    secret = settings.webhook_secret
    if secret is None:
        raise SignatureError("not_configured", "this service has no webhook secret set")
    secrets = [secret.get_secret_value()]
    if settings.webhook_secret_previous is not None:
        secrets.append(settings.webhook_secret_previous.get_secret_value())
    scheme = settings.webhook_scheme
    tolerance = settings.webhook_tolerance_s
    if scheme != "legacy" and (scheme == "standard" or STANDARD_SIGNATURE_HEADER in headers):
        msg_id = headers.get(STANDARD_ID_HEADER)
        fingerprint = verify_standard(
            secrets,
            msg_id,
            headers.get(STANDARD_TIMESTAMP_HEADER),
            headers.get(STANDARD_SIGNATURE_HEADER),
            body,
            tolerance_s=tolerance,
        )
        return fingerprint, msg_id
    fingerprint = verify(
        secrets,
        headers.get(TIMESTAMP_HEADER),
        headers.get(SIGNATURE_HEADER),
        body,
        tolerance_s=tolerance,
    )
    return fingerprint, None


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


class Replayed(Exception):
    """This signature was accepted before, under another delivery id."""


def _accept(
    state: Any, meeting: MeetingOutput, event_id: str, fingerprint: str, session: Session
) -> Written[JSONResponse]:
    """Dedupe and store one delivery in the writer's batch (its own savepoint): its answer,
    and the enqueue once the batch is committed and answered. Refused: nothing stays."""
    settings, pipeline = state.settings, state.pipeline
    seen = session.get(WebhookEvent, event_id)
    if seen is not None:
        replayed = JSONResponse(
            seen.response, status_code=seen.status_code, headers={"X-Meetsync-Replay": "true"}
        )
        return Written(replayed)
    try:
        remember_signature(session, fingerprint, settings.webhook_tolerance_s)
        stored = store_meeting(session, meeting)
    except Replayed:
        raise Refused(
            _problem(
                401,
                "replayed_signature",
                "this signature was already accepted; sign anew to resend",
            )
        ) from None
    except UnknownOrg:
        raise Refused(
            _problem(404, "unknown_org", f"org {meeting.org_id!r} is not set up")
        ) from None
    answer = {
        "meeting_id": stored.meeting_id,
        "status": "stale" if stored.stale else "accepted",
        "status_url": meeting_link(settings, stored.meeting_id),
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
    if stored.stale:
        # an older revision than the stored one: acknowledged, so the sender stops retrying
        return Written(JSONResponse(answer, status_code=200))
    accepted = JSONResponse(answer, status_code=202, headers={"Location": answer["status_url"]})
    return Written(accepted, then=partial(pipeline.enqueue_extract, stored.meeting_id))


def forget_expired_signatures(session: Session) -> None:
    """Drop the signatures whose window is over (once per batch: it also opens the write)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    session.execute(delete(WebhookSignature).where(WebhookSignature.expires_at < now))


def delivery_writer(settings: Settings) -> DeliveryWriter:
    """The app's writer of webhook deliveries."""
    return DeliveryWriter(settings.database_url, prepare=forget_expired_signatures)


def remember_signature(session: Session, fingerprint: str, window_s: int) -> None:
    """Record an accepted signature for its window (both sides of our clock); Replayed if
    it is there already. Expired ones are dropped once per batch (forget_expired_signatures)."""
    if session.get(WebhookSignature, fingerprint) is not None:
        raise Replayed
    now = datetime.now(UTC).replace(tzinfo=None)
    expires = now + timedelta(seconds=2 * window_s + 60)
    session.add(WebhookSignature(fingerprint=fingerprint, expires_at=expires))
    # a concurrent replay that got past the check fails on this row's key (IntegrityError)
    session.flush()


def json_body(payload: MeetingOutput) -> bytes:
    """Compact JSON of a payload, as the notes pipeline sends it."""
    return json.dumps(payload.model_dump(mode="json"), separators=(",", ":")).encode()
