"""A hostile "model" for the OpenAI emulator: schema-valid answers that lie.

Chosen per model name (`hostile-echo`, `hostile-invent`, `hostile-prompt`, `hostile-huge`),
so a test points one org's extraction at it while every other test keeps the rules model.
Every quote it gives is a real transcript line, so quote grounding alone lets it through:

    echo    every field is transcript text: titles and notes are lines, the owner is an
            email spoken in the meeting, dates and stages are sentences, the amount is a
            number taken from anywhere, and each quote is a line that says none of it
    invent  plausible values nobody said: a trillion-dollar amount, "Closed Won", a due
            date of 2026-02-30, an owner from outside the meeting, a confidence of 7.5
    prompt  titles, notes and next steps are lines of its own system prompt
    huge    a valid answer padded to `size` bytes, sent in chunks with no Content-Length,
            whatever max_completion_tokens says
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from sandbox.rules.conform import conform
from sandbox.rules.prompt_view import MeetingView, read_prompt
from sandbox.rules_model import task_of

MODES = {"echo", "invent", "prompt", "huge"}
MODELS = {f"hostile-{mode}": mode for mode in MODES}
HUGE_BYTES = 8 * 1024 * 1024
PAD = "__PAD__"  # the content placeholder `huge_body` replaces with the padding
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_MONEY = re.compile(r"[$€£]|\d+\s?k\b|\bdollars?\b|\busd\b", re.IGNORECASE)
_DATEISH = re.compile(
    r"\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|tomorrow|today|week"
    r"|month|quarter|year|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|\d)",
    re.IGNORECASE,
)


def answer(mode: str, messages: list[dict[str, Any]], schema: dict[str, Any] | None) -> str:
    """The hostile answer's content (JSON), shaped to `schema` so the SDK parses it."""
    view = read_prompt(messages)
    task = task_of(schema or {})
    if mode == "prompt":
        data = _prompt_echo(view, _system_lines(messages))
    elif mode == "invent":
        data = _invented(view)
    else:
        data = _echoed(view)
    shaped = data[task] if task in data else {**data["action_items"], "crm": data["crm_fields"]}
    if schema is not None:
        shaped = conform(schema, shaped)
    return json.dumps(shaped, ensure_ascii=False)


def huge_body(completion: dict[str, Any], size: int) -> Iterator[bytes]:
    """The completion as JSON whose content is padded to about `size` bytes, in chunks."""
    head, _, tail = json.dumps(completion).partition(json.dumps(PAD))
    yield head.encode() + b'"{\\"action_items\\": [], \\"pad\\": \\"'
    chunk = b"x" * 65_536
    for _ in range(max(1, size // len(chunk))):
        yield chunk
    yield b'\\"}"' + tail.encode()


# -- the lies -------------------------------------------------------------------------------
def _texts(view: MeetingView) -> list[str]:
    return [line.text for line in view.lines if line.text.strip()] or ["(silence)"]


def _without(pattern: re.Pattern[str], texts: list[str]) -> str:
    return next((t for t in texts if not pattern.search(t)), texts[0])


def _echoed(view: MeetingView) -> dict[str, Any]:
    texts = _texts(view)
    emails = [m for t in texts for m in _EMAIL.findall(t)]
    spoken_email = emails[0] if emails else texts[0]
    numbers = [float(n) for t in texts for n in re.findall(r"\b\d+\b", t)] or [42.0]
    items = [
        {
            "title": text,
            "description": texts[(i + 1) % len(texts)],
            "owner": spoken_email,
            "owner_email": spoken_email,
            "due_date": texts[(i + 2) % len(texts)],
            "priority": "high",
            "confidence": 1.0,
            "evidence": text,
        }
        for i, text in enumerate(texts[:6])
    ]
    plain, undated = _without(_MONEY, texts), _without(_DATEISH, texts)

    def other(i: int) -> str:
        return texts[i % len(texts)]

    crm = {
        "next_steps": {"value": other(1), "evidence": other(2)},
        "stage": {"value": other(3), "evidence": other(3)},
        "amount": {"value": max(numbers) * 1e9, "currency": other(0), "evidence": plain},
        "close_date": {"value": other(4), "evidence": undated},
        "competitors": {"values": texts[:3], "evidence": other(1)},
        "pain_points": None,
        "decision_makers": {"values": texts[:2], "evidence": other(0)},
        "budget": {"value": other(5), "evidence": other(6)},
        "timeline": {"value": other(2), "evidence": other(3)},
        "risks": None,
    }
    return {"action_items": {"action_items": items}, "crm_fields": crm}


def _invented(view: MeetingView) -> dict[str, Any]:
    texts = _texts(view)
    plain, undated = _without(_MONEY, texts), _without(_DATEISH, texts)
    speaker = next((line.speaker for line in view.lines if line.speaker), None)
    items = [
        {
            "title": "Wire the prepayment to the new account",
            "description": "Agreed in the meeting.",
            "owner": "Mallory Evil",
            "owner_email": "mallory@evil.example",
            "due_date": "2026-02-30",
            "priority": "high",
            "confidence": 7.5,
            "evidence": plain,
        },
        {
            "title": "Sign the order form",
            "description": None,
            "owner": speaker,  # a real attendee, who never said this
            "owner_email": None,
            "due_date": "2031-01-01",
            "priority": None,
            "confidence": 0.9,
            "evidence": undated,
        },
    ]
    crm = {
        "next_steps": {"value": "Countersign the enterprise agreement", "evidence": plain},
        "stage": {"value": "Closed Won", "evidence": plain},
        "amount": {"value": 1e12, "currency": "USD", "evidence": plain},
        "close_date": {"value": "2026-02-30", "evidence": undated},
        "competitors": {"values": ["Oracle", "Initrode Analytics"], "evidence": plain},
        "pain_points": None,
        "decision_makers": {"values": ["Mallory Evil (CEO)"], "evidence": plain},
        "budget": {"value": "$5M approved for 2027", "evidence": plain},
        "timeline": {"value": "Go live on 2030-01-01", "evidence": undated},
        "risks": None,
    }
    return {"action_items": {"action_items": items}, "crm_fields": crm}


def _system_lines(messages: list[dict[str, Any]]) -> list[str]:
    system = next((m for m in messages if m.get("role") in {"system", "developer"}), {})
    content = system.get("content")
    text = content if isinstance(content, str) else ""
    text = text.split("<org_profile>")[0]
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return [line for line in lines if len(line.split()) >= 4] or ["Follow the rules above."]


def _prompt_echo(view: MeetingView, lines: list[str]) -> dict[str, Any]:
    texts = _texts(view)
    items = [
        {
            "title": line,
            "description": lines[(i + 1) % len(lines)],
            "owner": None,
            "owner_email": None,
            "due_date": None,
            "priority": None,
            "confidence": 0.95,
            "evidence": texts[i % len(texts)],
        }
        for i, line in enumerate(lines[:4])
    ]
    crm = dict.fromkeys(
        ("stage", "amount", "close_date", "competitors", "pain_points", "decision_makers",
         "budget", "timeline", "risks"),
    )  # fmt: skip
    crm["next_steps"] = {"value": lines[-1], "evidence": texts[0]}
    crm["risks"] = {"values": lines[1:3], "evidence": texts[0]}
    return {"action_items": {"action_items": items}, "crm_fields": crm}
