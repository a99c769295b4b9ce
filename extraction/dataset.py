"""Labelled evaluation sets: the file format, its JSON Schema, and validation that points.

One JSON file per meeting (`extraction/datasets/README.md`, `schema.json`). Loading
validates every file first and reports every problem at once, each with the file, the
JSON path inside it and what to change, before any model is called.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from meetsync.memory import ENTRY_MODELS, SECTIONS
from meetsync.models import MeetingOutput

SCHEMA_FILE = Path(__file__).parent / "datasets" / "schema.json"
MEMORY_FILE = "memory.yaml"
Task = Literal["action_items", "crm"]
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"


class GoldItem(BaseModel):
    """One expected action item; owner and due date are scored only when present."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, description="What has to be done, imperative")
    owner: str | None = Field(
        default=None,
        description="Who committed, as the transcript names them (a name, role or speaker "
        "label); compared with the predicted owner when present",
    )
    owner_email: str | None = Field(
        default=None, description="The owner's attendee email; null means 'no owner'"
    )
    due_date: str | None = Field(
        default=None, pattern=_ISO_DATE, description="YYYY-MM-DD; null means 'no date said'"
    )
    terms: list[str] | None = Field(
        default=None,
        description="Names and terms the title must spell the org's way ('Kubernetes' where "
        "the transcript heard 'Cooper Netties'); scored on the matched prediction's title",
    )
    labelled: set[str] = Field(default_factory=set, exclude=True)


class Gold(BaseModel):
    """The labels of one meeting."""

    model_config = ConfigDict(extra="forbid")

    action_items: list[GoldItem] | None = Field(
        default=None,
        description="Every commitment in the meeting and nothing else; [] when there is none",
    )
    crm: dict[str, Any] = Field(
        default_factory=dict, description="Expected CRM fields; only the named ones are scored"
    )
    closes: list[str] | None = Field(
        default=None,
        description="Titles of the dataset memory's open commitments this meeting reports as "
        "done (memory.yaml); [] when it closes none; absent: closures not scored",
    )
    unlabelled: list[Task] = Field(
        default_factory=list,
        description="Tasks not labelled for this meeting: it still runs (cost, latency) "
        "but is scored for nothing on them",
    )

    @model_validator(mode="after")
    def _labelled_or_not(self) -> Gold:
        if self.action_items is None and "action_items" not in self.unlabelled:
            raise ValueError(
                "action_items is missing: list the meeting's commitments ([] for none) "
                'or add "action_items" to gold.unlabelled'
            )
        return self


class DatasetFile(BaseModel):
    """One labelled meeting, as stored in `<dataset>/<name>.json`."""

    model_config = ConfigDict(extra="forbid", title="meetsync evaluation example")

    meeting: MeetingOutput
    gold: Gold


class Example(BaseModel):
    """One labelled meeting, loaded."""

    name: str
    meeting: MeetingOutput
    action_items: list[GoldItem] | None
    crm: dict[str, Any] = Field(default_factory=dict)
    closes: list[str] | None = None

    @property
    def items_labelled(self) -> bool:
        return self.action_items is not None


class Problem(BaseModel):
    """One thing wrong in a dataset file, and where."""

    file: str
    path: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message} (fix: {self.fix})"


class InvalidDataset(ValueError):
    """The dataset has problems; each names the file, the JSON path and the fix."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        shown = "\n".join(f"  - {p}" for p in problems[:50])
        more = f"\n  … and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{len(problems)} problem(s) in the dataset:\n{shown}{more}")


def json_schema() -> dict[str, Any]:
    """The JSON Schema of one dataset file (what `schema.json` holds)."""
    schema = DatasetFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://meetsync.dev/schemas/eval-example.json"
    return schema


def validate_dataset(dataset_dir: Path) -> list[Problem]:
    """Every problem in every `*.json` file of the folder; empty when all is well."""
    folder = Path(dataset_dir)
    files = sorted(folder.glob("*.json"))
    if not files:
        return [Problem(file=str(folder), path="$", message="no *.json files",
                        fix="put one JSON file per labelled meeting in the folder")]  # fmt: skip
    problems: list[Problem] = []
    for path in files:
        problems += _check_file(path)
    problems += memory_problems(folder)
    return problems


def load_memory(dataset_dir: Path) -> dict[str, Any] | None:
    """The org memory the dataset carries (`memory.yaml`: people, terms, preferences,
    commitments, as `meetsync memory import` reads them), or None."""
    path = Path(dataset_dir) / MEMORY_FILE
    if not path.is_file():
        return None
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return data if isinstance(data, dict) else {"": data}


def memory_problems(dataset_dir: Path) -> list[Problem]:
    """Every bad row of the dataset's memory file, each with its place."""
    name = str(Path(dataset_dir) / MEMORY_FILE)
    try:
        document = load_memory(dataset_dir)
    except (OSError, yaml.YAMLError) as exc:
        return [Problem(file=name, path="$", message=str(exc), fix="write valid YAML")]
    problems: list[Problem] = []
    for section, values in (document or {}).items():
        kind = SECTIONS.get(section)
        if kind is None or not isinstance(values, list):
            problems.append(Problem(file=name, path=f"$.{section}", message="not a section",
                                    fix=f"use lists under {', '.join(SECTIONS)}"))  # fmt: skip
            continue
        for k, value in enumerate(values):
            try:
                ENTRY_MODELS[kind].model_validate(value)
            except ValidationError as exc:
                for error in exc.errors(include_url=False):
                    problems.append(
                        Problem(
                            file=name,
                            path=f"$.{section}[{k}]" + _json_path(error["loc"])[1:],
                            message=error["msg"],
                            fix=_fix(error["type"], error["loc"]),
                        )
                    )
    return problems


def load_dataset(dataset_dir: Path) -> list[Example]:
    """Every example in the folder, sorted by name; `InvalidDataset` lists all problems."""
    problems = validate_dataset(dataset_dir)
    if problems:
        raise InvalidDataset(problems)
    return [_example(path) for path in sorted(Path(dataset_dir).glob("*.json"))]


def _example(path: Path) -> Example:
    raw = json.loads(path.read_text())
    parsed = DatasetFile.model_validate(raw)
    items = None
    if parsed.gold.action_items is not None and "action_items" not in parsed.gold.unlabelled:
        items = []
        for gold, source in zip(parsed.gold.action_items, raw["gold"]["action_items"], strict=True):
            gold.labelled = {
                k for k in ("owner", "owner_email", "due_date", "terms") if k in source
            }
            items.append(gold)
    crm = {} if "crm" in parsed.gold.unlabelled else parsed.gold.crm
    return Example(
        name=path.stem,
        meeting=parsed.meeting,
        action_items=items,
        crm=crm,
        closes=parsed.gold.closes,
    )


def _check_file(path: Path) -> list[Problem]:
    name = str(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        return [Problem(file=name, path="$", message=str(exc), fix="save the file as UTF-8")]
    except json.JSONDecodeError as exc:
        where = f"$ (line {exc.lineno}, column {exc.colno})"
        return [Problem(file=name, path=where, message=f"not JSON: {exc.msg}",
                        fix="correct the JSON syntax there")]  # fmt: skip
    try:
        parsed = DatasetFile.model_validate(raw)
    except ValidationError as exc:
        return [
            Problem(
                file=name,
                path=_json_path(error["loc"]),
                message=error["msg"],
                fix=_fix(error["type"], error["loc"]),
            )
            for error in exc.errors(include_url=False)
        ]
    emails = {(a.email or "").lower() for a in parsed.meeting.attendees if a.email}
    problems = []
    for k, item in enumerate(parsed.gold.action_items or []):
        if item.owner_email and item.owner_email.lower() not in emails:
            problems.append(
                Problem(
                    file=name,
                    path=f"$.gold.action_items[{k}].owner_email",
                    message=f"{item.owner_email!r} is not an attendee's email",
                    fix="use an email from meeting.attendees, or name the owner in `owner`",
                )
            )
    return problems


def _json_path(loc: tuple[int | str, ...]) -> str:
    out = "$"
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            out += f".{part}"
        else:  # a validator's own label (e.g. 'function-after[...]'): not a key in the file
            continue
    return out


def _fix(kind: str, loc: tuple[int | str, ...]) -> str:
    field = str(loc[-1]) if loc else ""
    fixes = {
        "missing": f"add `{field}`",
        "extra_forbidden": f"remove `{field}` or correct its spelling (see schema.json)",
        "string_pattern_mismatch": "write the date as YYYY-MM-DD",
        "string_type": "make it a JSON string",
        "string_too_short": "give it a non-empty value",
        "list_type": "make it a JSON array",
        "dict_type": "make it a JSON object",
        "literal_error": "use one of the allowed values listed in the message",
        "value_error": "see the message",
        "datetime_from_date_parsing": "write an ISO 8601 timestamp with an offset",
        "timezone_aware": "add a UTC offset, e.g. 2026-11-20T15:00:00Z",
    }
    return fixes.get(kind, "make it match schema.json")
