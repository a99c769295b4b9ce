"""Asana's failures as connector errors: the one place that knows Asana's statuses.

`_classify` maps an SDK ApiException, with Asana's own words from `{"errors": [{"message"}]}`
(else the HTTP reason): 429 is RateLimited (Retry-After, else 60 s), 401 AuthExpired, no
status or 5xx Transient, and anything else Permanent; the status is the provider_code.
"""

from __future__ import annotations

import json
from typing import Any

from asana.rest import ApiException

from connectors.errors import AuthExpired, ConnectorError, Permanent, RateLimited, Transient


def _classify(exc: ApiException) -> ConnectorError:
    retry_after = (exc.headers or {}).get("Retry-After")
    return classified(int(exc.status or 0), _message(exc), retry_after)


def classified(status: int, message: str, retry_after: str | None = None) -> ConnectorError:
    """The connector error for an Asana answer with this status (a request's, or a batch
    action's) and Asana's own words."""
    code = str(status)
    if status == 429:
        return RateLimited(message, retry_after=float(retry_after or 60), provider_code=code)
    if status == 401:
        return AuthExpired(message, provider_code=code)
    if status == 0 or status >= 500:
        return Transient(message, provider_code=code)
    return Permanent(message, provider_code=code)


def errors_message(body: Any) -> str | None:
    """Asana's own words from an error body `{"errors": [{"message": …}]}`, if any."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return None
    words = [e["message"] for e in errors if isinstance(e, dict) and e.get("message")]
    return "; ".join(words) or None


def _message(exc: ApiException) -> str:
    """Asana's own words from `{"errors": [{"message": …}]}`, else the HTTP reason."""
    try:
        return errors_message(json.loads(exc.body or b"{}")) or str(exc.reason)
    except ValueError:
        return str(exc.reason)
