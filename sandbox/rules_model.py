"""The sandbox's deterministic "model": pure functions from a chat request to an answer.

It reads the meeting and transcript blocks out of the prompt (sandbox/rules/prompt_view.py),
recognises the requested task by the response schema's properties, and answers with data
that validates against that schema. Everything outside the blocks is instructions; what is
inside the transcript is data only, so "ignore your instructions …" said in a meeting is
just another sentence.
"""

from __future__ import annotations

from typing import Any

from sandbox.rules.commitments import find_commitments
from sandbox.rules.conform import conform
from sandbox.rules.crm import find_crm
from sandbox.rules.judge import judge
from sandbox.rules.prompt_view import MeetingView, read_prompt

CRM_KEYS = {"next_steps", "stage", "amount", "close_date", "competitors", "budget", "timeline"}


def task_of(schema: dict[str, Any]) -> str:
    """'action_items', 'crm_fields', 'judge' or 'other', from the schema's top-level properties."""
    props = set(schema.get("properties", {}))
    if {"same", "reason"} <= props:
        return "judge"
    if "action_items" in props:
        return "action_items"
    if props & CRM_KEYS:
        return "crm_fields"
    return "other"


def action_items(view: MeetingView) -> dict[str, Any]:
    """The action-items answer as plain data; org memory in the prompt, when there is any,
    turns spoken names and misspellings into the org's names and spellings."""
    found = find_commitments(view)
    owners = [view.canonical(item.owner) or (item.owner, item.owner_email) for item in found]
    return {
        "action_items": [
            {
                "title": view.spelled(item.title),
                "description": None,
                "owner": owner,
                "owner_email": item.owner_email or email,
                "due_date": item.due.isoformat() if item.due else None,
                "priority": item.priority,
                "confidence": item.confidence,
                "evidence": item.evidence,
            }
            for item, (owner, email) in zip(found, owners, strict=True)
        ]
    }


def answer(messages: list[dict[str, Any]], schema: dict[str, Any] | None) -> dict[str, Any]:
    """The model's answer to `messages`, shaped to `schema` (free-form when there is none)."""
    task = task_of(schema or {})
    if task == "judge":
        return judge([str(m.get("content") or "") for m in messages])
    view = read_prompt(messages)
    if task == "action_items":
        data: dict[str, Any] = action_items(view)
        if schema is not None and "crm" in schema.get("properties", {}):
            data["crm"] = find_crm(view)
    elif task == "crm_fields":
        data = find_crm(view)
    else:
        data = {"action_items": action_items(view)["action_items"], "crm": find_crm(view)}
    if schema is None:
        return data
    shaped: dict[str, Any] = conform(schema, data)
    return shaped
