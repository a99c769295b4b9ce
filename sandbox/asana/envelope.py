"""Successful answers in Asana's `{"data": …}` envelope: `opt_fields` and offset pagination.

Everything is served under PREFIX. As Asana does, a list is paginated only when the request
gives `limit` (1-100): the page then links the next one by an opaque `offset` token, with a
`next_page` path and URI; without `limit` the whole list comes back with no `next_page`, or a
400 when it is longer than MAX_UNPAGED. An offset token the server did not hand out is 400.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from sandbox.asana.errors import AsanaError

PREFIX = "/api/1.0"
PAGE_MAX = 100
MAX_UNPAGED = 1_000  # a list this long must be paginated, as Asana answers


def _select(body: dict[str, Any], request: Request) -> dict[str, Any]:
    """Apply `opt_fields`: gid plus the named top-level properties, as Asana returns them."""
    raw = request.query_params.get("opt_fields")
    if not raw:
        return body
    wanted = {f.strip().split(".")[0] for f in raw.split(",") if f.strip()} | {"gid"}

    def pick(obj: Any) -> Any:
        return {k: v for k, v in obj.items() if k in wanted} if isinstance(obj, dict) else obj

    data = body["data"]
    selected = [pick(item) for item in data] if isinstance(data, list) else pick(data)
    return {**body, "data": selected}


def _page(
    request: Request,
    items: list[Any],
    render: Callable[[Any], dict[str, Any]] = lambda item: item,
) -> dict[str, Any]:
    """Offset pagination when `limit` is given: an opaque `offset`, and `next_page` or null.

    `render` makes an item's representation; only the page's items are rendered, so a page
    costs its own size, not the whole list's."""
    query = request.query_params
    if "limit" not in query:
        if "offset" in query:
            raise AsanaError(400, "offset: Your pagination token is invalid")
        if len(items) > MAX_UNPAGED:
            raise AsanaError(
                400,
                "The result is too large. You should use pagination (may require specifying "
                "a workspace)!",
            )
        return {"data": [render(item) for item in items]}
    try:
        limit = int(query["limit"])
    except ValueError as exc:
        raise AsanaError(400, f"limit: Not a valid integer: {query['limit']}") from exc
    start = _position(query.get("offset"))
    if not 1 <= limit <= PAGE_MAX:
        raise AsanaError(400, f"limit: Must be between 1 and {PAGE_MAX}, got {limit}")
    end = start + limit
    next_page = None
    if end < len(items):
        token = _token(end)
        path = f"{request.url.path.removeprefix(PREFIX)}?limit={limit}&offset={token}"
        next_page = {
            "offset": token,
            "path": path,
            "uri": f"{request.url.scheme}://{request.url.netloc}{PREFIX}{path}",
        }
    return {"data": [render(item) for item in items[start:end]], "next_page": next_page}


def _token(position: int) -> str:
    """An opaque offset token, as Asana's look: base64 of a signed position."""
    raw = f"{position}:{_sign(position)}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _position(token: str | None) -> int:
    if token is None:
        return 0
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        position, _, signature = raw.partition(":")
        if signature == _sign(int(position)):
            return int(position)
    except (ValueError, UnicodeDecodeError):
        pass
    raise AsanaError(400, "offset: Your pagination token is invalid")


def _sign(position: int) -> str:
    return hashlib.sha256(f"asana-sandbox-offset:{position}".encode()).hexdigest()[:12]
