"""A JSONL file, or a directory of `.json` (one record each) and `.jsonl` files, read in order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from admin.sources.base import SourceError, SourceRecord, Window
from meetsync.models import MeetingOutput


def parse_record(text: str) -> tuple[MeetingOutput | None, str | None]:
    """A MeetingOutput, or why this text is not one (first few field errors, with paths)."""
    try:
        return MeetingOutput.model_validate_json(text), None
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if errors and errors[0]["type"] == "json_invalid":
            return None, "malformed JSON"
        described = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(record)'}: {e['msg']}" for e in errors[:3]
        )
        return None, f"invalid record: {described}"


class RecordFiles:
    """MeetingOutput records from a path; position is `<file index>:<line>`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def describe(self) -> str:
        return f"file:{self.path.resolve()}"

    def files(self) -> list[Path]:
        if self.path.is_file():
            return [self.path]
        if self.path.is_dir():
            return sorted(p for p in self.path.rglob("*") if p.suffix in {".json", ".jsonl"})
        raise SourceError(f"no such file or directory: {self.path}")

    def count(self, window: Window) -> int | None:
        total = 0
        for path in self.files():
            if path.suffix == ".json":
                total += 1
                continue
            with path.open("rb") as handle:
                total += sum(1 for line in handle if line.strip())
        return total

    def records(self, window: Window, after: str | None) -> Iterator[SourceRecord]:
        done = _parse_position(after)
        for index, path in enumerate(self.files()):
            if index < done[0]:
                continue
            name = str(path.relative_to(self.path)) if self.path.is_dir() else path.name
            if path.suffix == ".json":
                if (index, 1) <= done:
                    continue
                yield _record(
                    f"{index}:1", name, path.read_text(encoding="utf-8", errors="replace")
                )
                continue
            with path.open(encoding="utf-8", errors="replace") as handle:
                for number, line in enumerate(handle, start=1):
                    if (index, number) <= done or not line.strip():
                        continue
                    yield _record(f"{index}:{number}", f"{name}:{number}", line)


def _record(position: str, ref: str, text: str) -> SourceRecord:
    meeting, problem = parse_record(text)
    return SourceRecord(position=position, ref=ref, meeting=meeting, problem=problem)


def _parse_position(position: str | None) -> tuple[int, int]:
    if not position:
        return (-1, 0)
    index, _, line = position.partition(":")
    return (int(index), int(line or 0))
