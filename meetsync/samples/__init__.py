"""Bundled demo meetings, in the webhook's MeetingOutput shape."""

from __future__ import annotations

from pathlib import Path

from meetsync.models import MeetingOutput

HERE = Path(__file__).parent


def load_samples() -> list[MeetingOutput]:
    """Every bundled meeting, ordered by file name."""
    return [
        MeetingOutput.model_validate_json(path.read_text()) for path in sorted(HERE.glob("*.json"))
    ]
