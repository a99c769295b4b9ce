"""Webhook signatures: Standard Webhooks, and the legacy X-Meetsync scheme behind a setting.

Standard Webhooks (https://www.standardwebhooks.com): `webhook-id`, `webhook-timestamp`
(unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`,
several space-separated for rotation. The secret is `whsec_<base64>` (its decoded bytes
are the key); any other string is used as its UTF-8 bytes. The id is signed, so a captured
delivery cannot be resent under a new id.

Legacy: `X-Meetsync-Timestamp` and `X-Meetsync-Signature: v1=<hex HMAC of "ts.body">`
(comma-separated for rotation). Its event id is not signed, which is why the receiver also
remembers every accepted signature for the time window (`intake.webhooks`).

Two receiving secrets may be valid at once, so a sender can rotate without downtime.
`verify*` return a fingerprint of the signature they accepted, for that memory.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Sequence

TIMESTAMP_HEADER = "x-meetsync-timestamp"
SIGNATURE_HEADER = "x-meetsync-signature"
STANDARD_ID_HEADER = "webhook-id"
STANDARD_TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"
MAX_ID = 200


class SignatureError(Exception):
    """Why a delivery was refused; `reason` is a stable code for the sender's logs."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The legacy X-Meetsync-Signature value for a body."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={digest.hexdigest()}"


def secret_key(secret: str) -> bytes:
    """The HMAC key of a secret: a `whsec_` secret's base64-decoded bytes, else its UTF-8."""
    if secret.startswith(SECRET_PREFIX):
        encoded = secret[len(SECRET_PREFIX) :]
        try:
            # unpadded base64 is common in whsec_ secrets; extra padding is ignored
            return base64.b64decode(encoded + "==", validate=False)
        except (binascii.Error, ValueError):
            raise ValueError("a whsec_ secret must be base64 after the prefix") from None
    return secret.encode()


def sign_standard(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value for one delivery (Standard Webhooks, v1)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return f"v1,{base64.b64encode(digest).decode()}"


def _fingerprint(signature: str) -> str:
    return hashlib.sha256(signature.encode()).hexdigest()


def _timestamp(timestamp: str | None, header: str, tolerance_s: int, now: float | None) -> int:
    if not timestamp:
        raise SignatureError("missing_timestamp", f"header {header} is required")
    if not timestamp.isascii() or not timestamp.strip().isdigit() or len(timestamp) > 12:
        raise SignatureError("bad_timestamp", "timestamp must be unix seconds")
    sent_at = int(timestamp)
    if abs((now if now is not None else time.time()) - sent_at) > tolerance_s:
        raise SignatureError(
            "expired_timestamp", f"timestamp is more than {tolerance_s}s from our clock"
        )
    return sent_at


def verify_standard(
    secrets: Sequence[str],
    msg_id: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    tolerance_s: int = 300,
    now: float | None = None,
) -> str:
    """The fingerprint of the accepted signature; SignatureError unless one secret signed
    this id, timestamp and body within the window (Standard Webhooks)."""
    if not signature:
        raise SignatureError("missing_signature", f"header {STANDARD_SIGNATURE_HEADER} is required")
    if not msg_id:
        raise SignatureError("missing_id", f"header {STANDARD_ID_HEADER} is required")
    if len(msg_id) > MAX_ID or not msg_id.isascii() or not msg_id.isprintable():
        raise SignatureError("bad_id", f"{STANDARD_ID_HEADER} must be at most {MAX_ID} ASCII")
    sent_at = _timestamp(timestamp, STANDARD_TIMESTAMP_HEADER, tolerance_s, now)
    offered = [part for part in signature.split() if part.startswith("v1,")]
    matched: str | None = None
    for secret in secrets:
        expected = sign_standard(secret, msg_id, sent_at, body).encode()
        for candidate in offered:
            # every pair is compared in constant time (see verify)
            if hmac.compare_digest(expected, candidate.encode("ascii", "replace")):
                matched = candidate
    if matched is None:
        raise SignatureError("bad_signature", "no valid v1 signature for this id and body")
    return _fingerprint(matched)


def verify(
    secrets: Sequence[str],
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    tolerance_s: int = 300,
    now: float | None = None,
) -> str:
    """The fingerprint of the accepted signature; SignatureError unless one secret signed
    this body within the time window (the legacy X-Meetsync scheme)."""
    if not signature:
        raise SignatureError("missing_signature", f"header {SIGNATURE_HEADER} is required")
    sent_at = _timestamp(timestamp, TIMESTAMP_HEADER, tolerance_s, now)
    offered = [part.strip() for part in signature.split(",") if part.strip().startswith("v1=")]
    matched: str | None = None
    for secret in secrets:
        expected = sign(secret, sent_at, body)
        for candidate in offered:
            # every pair is compared, in constant time, so timing reveals neither which
            # secret matched nor how much of a forged signature was right
            if hmac.compare_digest(expected.encode(), candidate.encode("ascii", "replace")):
                matched = candidate
    if matched is None:
        raise SignatureError("bad_signature", "no valid v1 signature for this body")
    return _fingerprint(matched)
