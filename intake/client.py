"""The sender's side of the webhook: how the notes pipeline (or a test) signs and posts."""

from __future__ import annotations

import time
import uuid

import httpx

from intake.signatures import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from intake.webhooks import EVENT_HEADER, json_body
from meetsync.models import MeetingOutput

WEBHOOK_PATH = "/v1/webhooks/meeting-completed"


def signed_headers(secret: str, body: bytes, event_id: str | None = None) -> dict[str, str]:
    timestamp = int(time.time())
    return {
        "content-type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        EVENT_HEADER: event_id or uuid.uuid4().hex,
    }


def post_meeting(
    client: httpx.Client, secret: str, meeting: MeetingOutput, event_id: str | None = None
) -> httpx.Response:
    """POST a signed meeting-completed delivery."""
    body = json_body(meeting)
    return client.post(WEBHOOK_PATH, content=body, headers=signed_headers(secret, body, event_id))
