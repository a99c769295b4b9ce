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

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from intake.deliveries import DeliveryWriter, Overloaded, Unstored
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
from intake.webhook_store import RETRY_AFTER, Delivery, problem
from meetsync.models import MeetingOutput
from meetsync.settings import Settings

router = APIRouter()

EVENT_HEADER = "x-meetsync-event-id"
MAX_EVENT_ID = 200


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
        return problem(413, "body_too_large", f"limit is {settings.webhook_max_body_bytes} bytes")
    try:
        fingerprint, signed_id = check_signature(settings, request.headers, body)
    except SignatureError as exc:
        return problem(401, exc.reason, exc.message)
    try:
        meeting = MeetingOutput.model_validate_json(body)
    except ValidationError as exc:
        errors = [
            {"path": ".".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        return problem(422, "invalid_payload", "the body does not fit MeetingOutput", errors=errors)
    event_id = (
        signed_id
        or request.headers.get(EVENT_HEADER)
        or meeting.event_id
        or hashlib.sha256(body).hexdigest()
    )
    if len(event_id) > MAX_EVENT_ID:
        errors = [{"path": EVENT_HEADER, "message": f"at most {MAX_EVENT_ID} characters"}]
        return problem(422, "invalid_event_id", "the event id is too long", errors=errors)
    delivery = Delivery.of(settings, meeting, event_id, fingerprint)
    # one writer thread per app stores deliveries in batches (the tail: intake.deliveries)
    writer: DeliveryWriter = request.app.state.deliveries
    try:
        answer: JSONResponse = await writer.write(delivery)
    except Overloaded:
        return problem(503, "overloaded", "too many deliveries at once; retry", headers=RETRY_AFTER)
    except Unstored:
        return problem(
            503, "not_stored", "the delivery could not be stored; retry", headers=RETRY_AFTER
        )
    except IntegrityError:
        # a concurrent delivery of the same event or meeting won the race twice over
        return problem(409, "concurrent_delivery", "the same delivery is being processed; retry")
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


def json_body(payload: MeetingOutput) -> bytes:
    """Compact JSON of a payload, as the notes pipeline sends it."""
    return json.dumps(payload.model_dump(mode="json"), separators=(",", ":")).encode()
