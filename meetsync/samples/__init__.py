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


def sample_names() -> list[str]:
    """Names of the bundled demo meetings (file stems), sorted."""
    return sorted(path.stem for path in HERE.glob("*.json"))


def load_sample(name: str) -> MeetingOutput:
    """One bundled demo meeting by name, e.g. 'globex_discovery'."""
    path = HERE / f"{name}.json"
    if not path.is_file():
        raise KeyError(f"no sample meeting {name!r}; known: {', '.join(sample_names())}")
    return MeetingOutput.model_validate_json(path.read_text())
