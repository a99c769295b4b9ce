"""Successful answers in Asana's `{"data": …}` envelope: `opt_fields` and offset pagination.

Everything is served under PREFIX; a page holds at most PAGE_MAX items and links the next
one by `offset`, with a `next_page` path and URI as Asana gives them.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from sandbox.asana.errors import AsanaError

PREFIX = "/api/1.0"
PAGE_MAX = 100


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


def _page(request: Request, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Offset pagination: `limit` 1–100, an opaque `offset`, and `next_page` or null."""
    query = request.query_params
    try:
        limit = int(query.get("limit", PAGE_MAX))
        start = int(query.get("offset", "0"))
    except ValueError as exc:
        raise AsanaError(400, "offset: Your pagination token is invalid") from exc
    if not 1 <= limit <= PAGE_MAX:
        raise AsanaError(400, f"limit: Must be between 1 and {PAGE_MAX}, got {limit}")
    end = start + limit
    next_page = None
    if end < len(items):
        path = f"{request.url.path.removeprefix(PREFIX)}?limit={limit}&offset={end}"
        next_page = {
            "offset": str(end),
            "path": path,
            "uri": f"{request.url.scheme}://{request.url.netloc}{PREFIX}{path}",
        }
    return {"data": items[start:end], "next_page": next_page}
