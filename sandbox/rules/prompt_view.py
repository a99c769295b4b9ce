"""Reads the meeting, transcript and org profile blocks out of a chat prompt.

The extraction prompts render them in this machine-readable shape (see
extraction/prompting.py); anything else in the prompt is instructions, never data:

    <meeting>
    title: Globex discovery call
    date: 2026-11-17 (Tuesday)
    timezone: America/Chicago
    attendees:
    - Dana Reyes <dana@acme.io> (internal)
    </meeting>
    <transcript>
    [0] Dana Reyes: Morning, everyone!
    [1] (unknown speaker): Hi.
    </transcript>
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

_BLOCK = re.compile(
    r"<(?P<tag>meeting|transcript|org_profile|org_memory)>\n?(?P<body>.*?)</(?P=tag)>", re.S
)
_REMEMBERED = re.compile(
    r"^- (?P<name>[^<(;:\n]+?)\s*(?:<(?P<email>[^>\s]+)>)?\s*(?:\([^)]*\))?(?::[^;]*)?"
    r"(?:; also heard as: (?P<aliases>.+))?$"
)
_LINE = re.compile(r"^\[(?P<index>\d+)\] (?P<speaker>[^:\n]*): (?P<text>.*)$")
_ATTENDEE = re.compile(
    r"^- (?P<name>[^<(\n]*?)\s*(?:<(?P<email>[^>\s]+)>)?\s*(?:\((?P<kind>internal|external)\))?$"
)
UNKNOWN_SPEAKER = "(unknown speaker)"


@dataclass(frozen=True)
class Person:
    name: str | None
    email: str | None
    internal: bool

    @property
    def first(self) -> str:
        return (self.name or "").split(" ")[0]


@dataclass(frozen=True)
class Line:
    index: int
    speaker: str | None
    text: str


@dataclass
class MeetingView:
    """What the rules model knows about the meeting; empty fields when a block is missing."""

    title: str = ""
    day: date | None = None
    timezone: str = "UTC"
    attendees: list[Person] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    profile: dict[str, str] = field(default_factory=dict)
    # org memory's people and terms: (name, email, spoken names and misspellings)
    remembered: dict[str, list[tuple[str, str | None, tuple[str, ...]]]] = field(
        default_factory=dict
    )

    def canonical(self, name: str | None) -> tuple[str, str | None] | None:
        """The remembered person `name` (full, first name, alias or misspelling) is: (name,
        email); None when no one or several are."""
        wanted = (name or "").strip().lower()
        hits = {
            (full, email)
            for full, email, aliases in self.remembered.get("people", [])
            if wanted
            and wanted in {full.lower(), full.split()[0].lower(), *map(str.lower, aliases)}
        }
        return hits.pop() if len(hits) == 1 else None

    def spelled(self, text: str) -> str:
        """`text` with remembered terms' and people's misspellings written the org's way."""
        remembered = self.remembered.get("terms", []) + self.remembered.get("people", [])
        for term, _, aliases in remembered:
            for alias in sorted(aliases, key=len, reverse=True):
                text = re.sub(rf"(?<!\w){re.escape(alias)}(?!\w)", term, text, flags=re.I)
        return text

    def person(self, name: str | None) -> Person | None:
        """The attendee called `name` (full or first name), if any."""
        if not name:
            return None
        wanted = name.strip().lower()
        for person in self.attendees:
            full = (person.name or "").lower()
            if full and (wanted == full or wanted == full.split(" ")[0]):
                return person
        return None

    def profile_list(self, key: str) -> list[str]:
        return [v.strip() for v in self.profile.get(key, "").split("|") if v.strip()]

    @property
    def has_external(self) -> bool:
        return any(not p.internal for p in self.attendees)


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def read_prompt(messages: list[dict[str, Any]]) -> MeetingView:
    """The meeting view from the last message holding each block."""
    view = MeetingView()
    found: dict[str, str] = {}
    for message in messages:
        for block in _BLOCK.finditer(_text_of(message)):
            found[block["tag"]] = block["body"]
    _read_meeting(view, found.get("meeting", ""))
    for raw in found.get("transcript", "").splitlines():
        line = _LINE.match(raw.strip())
        if line:
            speaker = line["speaker"].strip()
            view.lines.append(
                Line(
                    int(line["index"]),
                    None if speaker == UNKNOWN_SPEAKER else speaker,
                    line["text"],
                )
            )
    section = ""
    for raw in found.get("org_memory", "").splitlines():
        if raw.endswith(":") and not raw.startswith("-"):
            section = raw[:-1].strip()
        elif section in {"people", "terms"} and (entry := _REMEMBERED.match(raw.strip())):
            aliases = tuple(a.strip() for a in (entry["aliases"] or "").split("|") if a.strip())
            view.remembered.setdefault(section, []).append(
                (entry["name"].strip(), entry["email"], aliases)
            )
    for raw in found.get("org_profile", "").splitlines():
        key, sep, value = raw.partition(":")
        if sep and key.strip() and not key.startswith((" ", "-")):
            view.profile[key.strip().lower()] = value.strip()
    return view


def _read_meeting(view: MeetingView, body: str) -> None:
    for raw in body.splitlines():
        line = raw.strip()
        if line.startswith("- "):
            m = _ATTENDEE.match(line)
            if m:
                view.attendees.append(
                    Person(m["name"] or None, m["email"], m["kind"] == "internal")
                )
            continue
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key == "title":
            view.title = value
        elif key == "date":
            try:
                view.day = date.fromisoformat(value.split(" ")[0])
            except ValueError:
                view.day = None
        elif key == "timezone":
            view.timezone = value
