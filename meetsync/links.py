"""Signed meeting links: the URL put in every recap, task and CRM record.

A link carries `exp` (unix seconds) and `sig` (HMAC-SHA256 of "<meeting id>.<exp>" under
the operator's `meeting_link_secret`), so whoever reads a recap can open the meeting's
public view until the link expires, and nobody can open another meeting's by changing
the id. `exp` is rounded up to a whole period of `meeting_link_ttl_s`, so the link (and
the payload hash of every op that carries it) stays the same between a preview and the
push, and across re-plans within a period; a link lives between one and two periods.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode

from meetsync.settings import Settings


class LinkSecretMissing(RuntimeError):
    """No `meeting_link_secret` is configured (production mode requires one)."""


def _secret(settings: Settings) -> bytes:
    if settings.meeting_link_secret is None:
        raise LinkSecretMissing("MEETSYNC_MEETING_LINK_SECRET is not set")
    return settings.meeting_link_secret.get_secret_value().encode()


def _signature(settings: Settings, meeting_id: str, expires: int) -> str:
    message = f"{meeting_id}.{expires}".encode()
    return hmac.new(_secret(settings), message, hashlib.sha256).hexdigest()


def sign_meeting_link(settings: Settings, meeting_id: str, *, now: float | None = None) -> str:
    """The query string (`exp=…&sig=…`) that opens a meeting's public view until it expires."""
    ttl = max(1, settings.meeting_link_ttl_s)
    at = int(now if now is not None else time.time())
    expires = (at // ttl + 2) * ttl
    return urlencode({"exp": expires, "sig": _signature(settings, meeting_id, expires)})


def meeting_link(settings: Settings, meeting_id: str, *, now: float | None = None) -> str:
    """The signed URL of a meeting's public view; every op carries it (so its payload hash
    does too), and intake, the planner and preview all make it here."""
    query = sign_meeting_link(settings, meeting_id, now=now)
    return f"{settings.public_base_url}/v1/meetings/{meeting_id}?{query}"


def verify_meeting_link(
    settings: Settings,
    meeting_id: str,
    exp: str | None,
    sig: str | None,
    *,
    now: float | None = None,
) -> bool:
    """Whether `exp` and `sig` are a link signed for this meeting that has not expired."""
    if settings.meeting_link_secret is None:
        return False
    if not exp or not sig or not exp.isascii() or not exp.isdigit() or len(exp) > 12:
        return False
    if not sig.isascii():
        return False
    if int(exp) < (now if now is not None else time.time()):
        return False
    return hmac.compare_digest(_signature(settings, meeting_id, int(exp)).encode(), sig.encode())
