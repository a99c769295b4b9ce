"""Demo meetings between the sandbox world's people, as meeting-completed webhook bodies."""

from __future__ import annotations

from pathlib import Path

from meetsync.models import MeetingOutput

SAMPLES_DIR = Path(__file__).parent


def sample_names() -> list[str]:
    """Names of the bundled demo meetings (file stems), sorted."""
    return sorted(path.stem for path in SAMPLES_DIR.glob("*.json"))


def load_sample(name: str) -> MeetingOutput:
    """One bundled demo meeting by name, e.g. 'globex_discovery'."""
    path = SAMPLES_DIR / f"{name}.json"
    if not path.is_file():
        raise KeyError(f"no sample meeting {name!r}; known: {', '.join(sample_names())}")
    return MeetingOutput.model_validate_json(path.read_text())
