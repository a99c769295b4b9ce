"""Versioned prompts and the machine-readable meeting block they carry.

A prompt file `prompts/<task>/<version>.md` has two sections, `## system` and `## user`,
with `$org_profile` and `$meeting` placeholders (string.Template, so JSON braces in the
text stay literal). The meeting block shape is the contract with the sandbox rules model
(sandbox/rules/prompt_view.py): numbered utterances `[12] Dana Reyes: …`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from string import Template
from typing import Any
from zoneinfo import ZoneInfo

from extraction.memory.render import render_memory
from meetsync.models import MeetingOutput, Utterance

PROMPTS_DIR = Path(__file__).parent / "prompts"
UNKNOWN_SPEAKER = "(unknown speaker)"
_TAGS = re.compile(r"</?\s*(meeting|transcript|org_profile|org_memory)\s*>", re.IGNORECASE)


class PromptNotFound(LookupError):
    """No prompt file for this task and version."""


@lru_cache(maxsize=32)
def load_prompt(task: str, version: str) -> tuple[Template, Template]:
    """The (system, user) templates of one task's prompt version."""
    path = PROMPTS_DIR / task / f"{version}.md"
    if not path.is_file():
        known = sorted(p.stem for p in (PROMPTS_DIR / task).glob("*.md"))
        raise PromptNotFound(f"no prompt {task}/{version}; known versions: {known}")
    sections = re.split(r"^## (system|user)\s*$", path.read_text(), flags=re.MULTILINE)
    parts = {sections[i]: sections[i + 1].strip() for i in range(1, len(sections) - 1, 2)}
    return Template(parts["system"]), Template(parts["user"])


def render_messages(
    task: str,
    version: str,
    meeting: MeetingOutput,
    utterances: list[tuple[int, Utterance]],
    org_profile: dict[str, Any] | None,
) -> list[dict[str, str]]:
    """Chat messages for one call over some of the meeting's utterances."""
    system, user = load_prompt(task, version)
    values = {
        "org_profile": render_profile(org_profile),
        "meeting": render_meeting(meeting, utterances),
    }
    return [
        {"role": "system", "content": system.safe_substitute(values)},
        {"role": "user", "content": user.safe_substitute(values)},
    ]


def _clean(text: str) -> str:
    # a transcript can't close our blocks or open new ones: it stays data
    return _TAGS.sub(lambda m: m.group(0).replace("<", "‹").replace(">", "›"), text)


def render_meeting(meeting: MeetingOutput, utterances: list[tuple[int, Utterance]]) -> str:
    """The <meeting> and <transcript> blocks."""
    local = meeting.start.astimezone(ZoneInfo(meeting.timezone))
    lines = [
        "<meeting>",
        f"title: {_clean(meeting.title)}",
        f"date: {local.date().isoformat()} ({local.strftime('%A')})",
        f"timezone: {meeting.timezone}",
        "attendees:",
    ]
    for person in meeting.attendees:
        name = _clean(person.name or "").replace("<", "").replace("(", "").strip()
        email = f" <{person.email}>" if person.email else ""
        kind = "internal" if person.internal else "external"
        lines.append(f"- {name}{email} ({kind})")
    lines += ["</meeting>", "<transcript>"]
    for index, utterance in utterances:
        speaker = (utterance.speaker or "").replace(":", " ").replace("\n", " ").strip()
        text = " ".join(utterance.text.split())
        lines.append(f"[{index}] {_clean(speaker) or UNKNOWN_SPEAKER}: {_clean(text)}")
    lines.append("</transcript>")
    return "\n".join(lines)


def render_profile(profile: dict[str, Any] | None) -> str:
    """The <org_profile> block: what the org sells, its stages, glossary and people; then
    the <org_memory> block of what this meeting recalled (profile["memory"]), if anything."""
    profile = profile or {}
    lines = ["<org_profile>"]
    for key in ("company", "sells"):
        if profile.get(key):
            lines.append(f"{key}: {_flat(profile[key])}")
    for key in ("stages", "competitors", "products"):
        if profile.get(key):
            lines.append(f"{key}: {' | '.join(_flat(v) for v in profile[key])}")
    glossary = profile.get("glossary") or {}
    if glossary:
        lines.append("glossary:")
        lines += [f"- {_flat(term)}: {_flat(meaning)}" for term, meaning in glossary.items()]
    people = profile.get("people") or []
    if people:
        lines.append("people:")
        for person in people:
            role = f" ({_flat(person['title'])})" if person.get("title") else ""
            email = f" <{person['email']}>" if person.get("email") else ""
            lines.append(f"- {_flat(person.get('name', ''))}{email}{role}")
    lines.append("</org_profile>")
    memory = render_memory(profile.get("memory"), _clean)
    return "\n".join([*lines, memory] if memory else lines)


def _flat(value: Any) -> str:
    return _clean(" ".join(str(value).split()))
