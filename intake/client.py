"""The sender's side of the webhook: how the notes pipeline (or a test) signs and posts.

Deliveries are signed with Standard Webhooks (`webhook-id`, `webhook-timestamp`,
`webhook-signature`); `legacy=True` signs with the X-Meetsync headers instead, as senders
that predate it do.
"""

from __future__ import annotations

import time
import uuid

import httpx

from intake.signatures import (
    SIGNATURE_HEADER,
    STANDARD_ID_HEADER,
    STANDARD_SIGNATURE_HEADER,
    STANDARD_TIMESTAMP_HEADER,
    TIMESTAMP_HEADER,
    sign,
    sign_standard,
)
from intake.webhooks import EVENT_HEADER, json_body
from meetsync.models import MeetingOutput

WEBHOOK_PATH = "/v1/webhooks/meeting-completed"


def signed_headers(
    secret: str, body: bytes, event_id: str | None = None, *, legacy: bool = False
) -> dict[str, str]:
    """Headers of one delivery of `body`: a fresh id unless given, signed now."""
    timestamp = int(time.time())
    msg_id = event_id or f"msg_{uuid.uuid4().hex}"
    if legacy:
        return {
            "content-type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret, timestamp, body),
            EVENT_HEADER: msg_id,
        }
    return {
        "content-type": "application/json",
        STANDARD_ID_HEADER: msg_id,
        STANDARD_TIMESTAMP_HEADER: str(timestamp),
        STANDARD_SIGNATURE_HEADER: sign_standard(secret, msg_id, timestamp, body),
    }


def post_meeting(
    client: httpx.Client,
    secret: str,
    meeting: MeetingOutput,
    event_id: str | None = None,
    *,
    legacy: bool = False,
) -> httpx.Response:
    """POST a signed meeting-completed delivery."""
    body = json_body(meeting)
    headers = signed_headers(secret, body, event_id, legacy=legacy)
    return client.post(WEBHOOK_PATH, content=body, headers=headers)
