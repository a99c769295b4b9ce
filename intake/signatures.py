"""Webhook signatures: HMAC-SHA256 over `<timestamp>.<raw body>`, like Stripe's and Slack's.

Headers: `X-Meetsync-Timestamp: <unix seconds>` and `X-Meetsync-Signature: v1=<hex>`
(several comma-separated `v1=` values are accepted, so a sender can sign with two secrets
while rotating). Two receiving secrets may be valid at once for the same reason.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

TIMESTAMP_HEADER = "x-meetsync-timestamp"
SIGNATURE_HEADER = "x-meetsync-signature"


class SignatureError(Exception):
    """Why a delivery was refused; `reason` is a stable code for the sender's logs."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value for a body (what the notes pipeline sends)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={digest.hexdigest()}"


def verify(
    secrets: Sequence[str],
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    tolerance_s: int = 300,
    now: float | None = None,
) -> None:
    """Raise SignatureError unless one secret signed this body within the time window."""
    if not signature:
        raise SignatureError("missing_signature", f"header {SIGNATURE_HEADER} is required")
    if not timestamp:
        raise SignatureError("missing_timestamp", f"header {TIMESTAMP_HEADER} is required")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise SignatureError("bad_timestamp", "timestamp must be unix seconds") from None
    if abs((now if now is not None else time.time()) - sent_at) > tolerance_s:
        raise SignatureError(
            "expired_timestamp", f"timestamp is more than {tolerance_s}s from our clock"
        )
    offered = [part.strip() for part in signature.split(",") if part.strip().startswith("v1=")]
    matched = False
    for secret in secrets:
        expected = sign(secret, sent_at, body)
        for candidate in offered:
            # every pair is compared, in constant time, so timing reveals neither which
            # secret matched nor how much of a forged signature was right
            matched |= hmac.compare_digest(expected.encode(), candidate.encode())
    if not matched:
        raise SignatureError("bad_signature", "no valid v1 signature for this body")
