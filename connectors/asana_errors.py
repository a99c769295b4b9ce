"""Asana's failures as connector errors: the one place that knows Asana's statuses.

`_classify` maps an SDK ApiException, with Asana's own words from `{"errors": [{"message"}]}`
(else the HTTP reason): 429 is RateLimited (Retry-After, else 60 s), 401 AuthExpired, no
status or 5xx Transient, and anything else Permanent; the status is the provider_code.
"""

from __future__ import annotations

import json

from asana.rest import ApiException

from connectors.errors import AuthExpired, Permanent, RateLimited, Transient


def _classify(exc: ApiException) -> Exception:
    status = int(exc.status or 0)
    message = _message(exc)
    code = str(status)
    if status == 429:
        headers = exc.headers or {}
        retry_after = float(headers.get("Retry-After") or 60)
        return RateLimited(message, retry_after=retry_after, provider_code=code)
    if status == 401:
        return AuthExpired(message, provider_code=code)
    if status == 0 or status >= 500:
        return Transient(message, provider_code=code)
    return Permanent(message, provider_code=code)


def _message(exc: ApiException) -> str:
    """Asana's own words from `{"errors": [{"message": …}]}`, else the HTTP reason."""
    try:
        errors = json.loads(exc.body or b"{}").get("errors") or []
        return "; ".join(e["message"] for e in errors if e.get("message")) or str(exc.reason)
    except (ValueError, AttributeError, TypeError):
        return str(exc.reason)
