"""The notes pipeline's HTTP API: `GET {base}/meetings`, paginated by an opaque cursor.

The contract is in README.md next to this file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx

from admin.sources.base import SourceError, SourceRecord, Window
from meetsync.models import MeetingOutput
from meetsync.settings import NotesApiSettings


class NotesApi:
    """Pages of MeetingOutput records; position is `{"page": <cursor>, "index": <n>}`."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        page_size: int = 100,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.page_size = page_size
        self.client = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout_s, transport=transport
        )

    @classmethod
    def from_settings(cls, settings: NotesApiSettings, base_url: str | None = None) -> NotesApi:
        url = base_url or settings.base_url
        if not url:
            raise SourceError("notes-api source needs MEETSYNC_NOTES_API__BASE_URL")
        token = settings.token.get_secret_value() if settings.token else None
        return cls(url, token, page_size=settings.page_size, timeout_s=settings.timeout_s)

    def describe(self) -> str:
        return f"notes-api:{self.base_url}"

    def count(self, window: Window) -> int | None:
        page = self._page(window, None)
        total = page.get("total")
        return int(total) if isinstance(total, int) else None

    def records(self, window: Window, after: str | None) -> Iterator[SourceRecord]:
        resume: dict[str, Any] = json.loads(after) if after else {"page": None, "index": -1}
        cursor: str | None = resume["page"]
        skip_through = int(resume["index"])
        number = 0
        while True:
            page = self._page(window, cursor)
            items = page.get("meetings")
            if not isinstance(items, list):
                raise SourceError("notes API page has no 'meetings' list")
            number += 1
            for index, item in enumerate(items):
                if index <= skip_through:
                    continue
                position = json.dumps({"page": cursor, "index": index})
                ref = f"page {number} #{index}"
                try:
                    meeting = MeetingOutput.model_validate(item)
                except ValueError as exc:
                    yield SourceRecord(position, ref, problem=f"invalid record: {_brief(exc)}")
                    continue
                yield SourceRecord(position, ref, meeting=meeting)
            skip_through = -1
            following = page.get("next_cursor")
            cursor = str(following) if following else None
            if not cursor:
                return

    def _page(self, window: Window, cursor: str | None) -> dict[str, Any]:
        params: dict[str, str | int] = {
            "org": window.org_id,
            "since": window.since.isoformat(),
            "limit": self.page_size,
        }
        if window.until is not None:
            params["until"] = window.until.isoformat()
        if cursor:
            params["cursor"] = cursor
        try:
            response = self.client.get("/meetings", params=params)
        except httpx.TransportError as exc:
            raise SourceError(f"notes API unreachable: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise SourceError(f"notes API answered {response.status_code}")
        try:
            data: dict[str, Any] = response.json()
        except ValueError as exc:
            raise SourceError("notes API page is not JSON") from exc
        return data

    def close(self) -> None:
        self.client.close()


def _brief(exc: Exception) -> str:
    text = str(exc).splitlines()
    return "; ".join(text[:3])
