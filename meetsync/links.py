"""The links meetsync writes into other systems, made in one place so they always agree."""

from __future__ import annotations

from meetsync.settings import Settings


def meeting_url(settings: Settings, meeting_id: str) -> str:
    """A stored meeting's status page; every op carries it, so its payload hash does too."""
    return f"{settings.public_base_url}/v1/meetings/{meeting_id}"
