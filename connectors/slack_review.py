"""Slack's side of review: the review message, the Edit modal, ephemeral answers.

The message shows each proposed change (object and record, linked; field, current →
proposed; the evidence with speaker and time) with Approve, Edit and Skip buttons, plus
Approve all; once decided, who decided what and when, and a link to what was written.

Action ids (what `intake/slack_interactions.py` dispatches on), each button's value the
review request's id (Approve all: the meeting's id):

    review:approve  review:edit  review:skip  review:approve_all  review:clarify

The Edit modal's callback id is `review:edit`, its private metadata the request id, one
input block per field, block id `field:<name>`, action id `value`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from slack_sdk.webhook import WebhookClient

from connectors.base import TargetSchema
from connectors.errors import Permanent
from connectors.slack import LOOPBACK, SlackConnector, slack_errors
from connectors.slack_blocks import clip, escape, link

APPROVE, EDIT, SKIP, APPROVE_ALL, CLARIFY = (
    "review:approve",
    "review:edit",
    "review:skip",
    "review:approve_all",
    "review:clarify",
)
ACTIONS = (APPROVE, EDIT, SKIP, APPROVE_ALL, CLARIFY)
EDIT_CALLBACK = "review:edit"
EVENT_TYPE = "meetsync_review"  # message metadata: finds a review message after a lost post
FIELD_BLOCK = "field:"
MAX_BLOCKS = 50  # Slack's limit for a message
VERDICT_WORDS = {
    "approved": "✅ Approved",
    "edited": "✏️ Edited",
    "skipped": "⏭️ Skipped",
    "expired": "⌛ Expired (skipped)",
    "not_needed": "✅ Written without review",
}


class ReviewSlack:
    """The Web API calls of review, over a Slack connection's own WebClient."""

    def __init__(self, connector: SlackConnector) -> None:
        self.connector = connector
        self.client = connector.client

    def user_id(self, email: str | None) -> str | None:
        """The Slack user of an email, or None when Slack knows no such person."""
        return self.connector._user_id(email)

    def dm_channel(self, user: str) -> str:
        return self.connector._open_dm(user)

    def group_members(self, handle: str) -> list[str]:
        """The user ids of a Slack user group, by its handle (`@deal-desk`)."""
        with slack_errors():
            groups = self.client.usergroups_list()["usergroups"]
            wanted = handle.lstrip("@")
            found = next((g for g in groups if g.get("handle") == wanted), None)
            if found is None:
                return []
            return list(self.client.usergroups_users_list(usergroup=found["id"])["users"])

    def post(
        self, channel: str, text: str, blocks: list[dict[str, Any]], meeting_id: str
    ) -> tuple[str, str]:
        """Post a meeting's review message, marked with its id; (channel id, ts)."""
        metadata = {"event_type": EVENT_TYPE, "event_payload": {"meeting_id": meeting_id}}
        with slack_errors():
            sent = self.client.chat_postMessage(
                channel=channel, text=text, blocks=blocks, metadata=metadata
            )
        return str(sent["channel"]), str(sent["ts"])

    def find(self, channel: str, meeting_id: str) -> tuple[str, str] | None:
        """(channel id, ts) of the meeting's review message in recent history, if posted."""
        channel_id = self.connector._channel_id(channel)
        with slack_errors():
            found = self.client.conversations_history(
                channel=channel_id, limit=200, include_all_metadata=True
            )
        for message in found.get("messages") or []:
            meta = message.get("metadata") or {}
            if (
                meta.get("event_type") == EVENT_TYPE
                and (meta.get("event_payload") or {}).get("meeting_id") == meeting_id
            ):
                return channel_id, str(message["ts"])
        return None

    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        with slack_errors():
            self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)

    def reply(self, channel: str, ts: str, text: str) -> None:
        """A line in the review message's thread (a reminder)."""
        with slack_errors():
            self.client.chat_postMessage(channel=channel, thread_ts=ts, text=text)

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> str:
        """Open a modal for the person who clicked; its view id."""
        with slack_errors():
            opened = self.client.views_open(trigger_id=trigger_id, view=view)
        return str(opened["view"]["id"])


def respond(response_url: str, text: str, *, replace: bool = False) -> int:
    """Answer a click through its response_url: ephemeral, for the clicker only; the status."""
    client = WebhookClient(response_url, timeout=5)
    if urlsplit(response_url).hostname in LOOPBACK:
        client.proxy = None  # the sandbox: loopback traffic never goes through a proxy
    body: dict[str, Any] = {"text": text, "response_type": "ephemeral"}
    if replace:
        body["replace_original"] = True
    return int(client.send_dict(body).status_code)


def review_message(
    meeting: Mapping[str, Any], requests: Sequence[Mapping[str, Any]]
) -> tuple[str, list[dict[str, Any]]]:
    """The fallback text and blocks of one meeting's review message."""
    title = str(meeting.get("title") or "a meeting")
    heading = f"*Review what meetsync will write for {link(meeting.get('url'), title)}*"
    blocks: list[dict[str, Any]] = [_section(heading)]
    pending = 0
    for request in requests:
        blocks.append({"type": "divider"})
        blocks.extend(_request_blocks(request))
        pending += request.get("state") == "pending"
    if pending > 1:
        blocks.append(
            {
                "type": "actions",
                "block_id": "review:all",
                "elements": [
                    _button("Approve all", APPROVE_ALL, str(meeting["id"]), style="primary")
                ],
            }
        )
    if len(blocks) > MAX_BLOCKS:
        more = _context(f"{len(requests)} proposals; open the console for the rest")
        blocks = [*blocks[: MAX_BLOCKS - 1], more]
    text = f"{pending} change(s) from {meeting.get('title') or 'a meeting'} wait for review"
    return text, blocks


def _request_blocks(request: Mapping[str, Any]) -> list[dict[str, Any]]:
    proposal = request.get("proposal") or {}
    if request.get("kind") == "clarify":
        return _clarify_blocks(request, proposal)
    record = str(proposal.get("object") or proposal.get("destination") or "record")
    label = str(proposal.get("label") or "")
    where = link(proposal.get("record_url"), f"{record} {label}".strip())
    lines = [f"*{where}*"]
    for field in proposal.get("fields") or []:
        if field.get("unchanged"):
            continue  # the record holds this value already
        why = f" _({escape(', '.join(field['reasons']))})_" if field.get("reasons") else ""
        lines.append(
            f"• *{escape(field['name'])}*: {_shown(field.get('current'))} → "
            f"*{_shown(field.get('proposed'))}*{why}"
        )
    blocks = [_section(_cut("\n".join(lines), 2900))]
    evidence = proposal.get("evidence") or {}
    if evidence.get("quote"):
        said = f"> “{clip(evidence['quote'], 500)}”"
        who = " — " + escape(evidence["speaker"]) if evidence.get("speaker") else ""
        at = f" at {_clock(evidence['at'])}" if evidence.get("at") is not None else ""
        blocks.append(_context(f"{said}{who}{at}"))
    state = request.get("state")
    if state == "pending":
        rid = str(request["id"])
        blocks.append(
            {
                "type": "actions",
                "block_id": f"review:{rid}",
                "elements": [
                    _button("Approve", APPROVE, rid, style="primary"),
                    _button("Edit", EDIT, rid),
                    _button("Skip", SKIP, rid, style="danger"),
                ],
            }
        )
    else:
        blocks.append(_context(_outcome(request)))
    return blocks


def _clarify_blocks(
    request: Mapping[str, Any], proposal: Mapping[str, Any]
) -> list[dict[str, Any]]:
    question = escape(proposal.get("question") or "Who owns this?")
    blocks = [_section(f"*{question}*")]
    if request.get("state") == "pending":
        options = [
            {
                "text": {"type": "plain_text", "text": _cut(str(choice["label"]), 75)},
                "value": f"{request['id']}|{choice['value']}"[:150],
            }
            for choice in (proposal.get("choices") or [])[:100]
        ]
        blocks.append(
            {
                "type": "actions",
                "block_id": f"review:{request['id']}",
                "elements": [
                    {
                        "type": "static_select",
                        "action_id": CLARIFY,
                        "placeholder": {"type": "plain_text", "text": "Pick one"},
                        "options": options,
                    }
                ],
            }
        )
    else:
        blocks.append(_context(_outcome(request)))
    return blocks


def _outcome(request: Mapping[str, Any]) -> str:
    words = VERDICT_WORDS.get(str(request.get("state")), str(request.get("state")))
    if request.get("kind") == "clarify" and request.get("state") == "edited":
        words = "✅ Answered"
    by = f" by <@{request['decided_by']}>" if _is_user(request.get("decided_by")) else ""
    if request.get("decided_by") and not by:
        by = f" by {escape(request['decided_by'])}"
    when = f" at {request['decided_at']}" if request.get("decided_at") else ""
    written = request.get("written_url")
    tail = ""
    if written:
        tail = " · " + link(written, "what was written")
    elif request.get("state") in {"approved", "edited", "not_needed"}:
        tail = " · writing…" if request.get("op_state") != "failed" else " · the write failed"
    answer = request.get("answer")
    said = f": {escape(answer)}" if answer else ""
    return f"{words}{said}{by}{when}{tail}"


def edit_view(request: Mapping[str, Any], schema: TargetSchema | None) -> dict[str, Any]:
    """The Edit modal, prefilled with the proposal; a picklist field as a select."""
    proposal = request.get("proposal") or {}
    blocks: list[dict[str, Any]] = []
    for field in proposal.get("fields") or []:
        if field.get("unchanged"):
            continue
        name = str(field["name"])
        facts = schema.field(name) if schema is not None else None
        proposed = field.get("proposed")
        element: dict[str, Any]
        if facts is not None and facts.picklist:
            options = [
                {"text": {"type": "plain_text", "text": _cut(v, 75)}, "value": v[:150]}
                for v in facts.picklist[:100]
            ]
            element = {"type": "static_select", "action_id": "value", "options": options}
            chosen = next((o for o in options if o["value"] == proposed), None)
            if chosen is not None:
                element["initial_option"] = chosen
        else:
            element = {"type": "plain_text_input", "action_id": "value"}
            if proposed is not None:
                element["initial_value"] = _cut(_plain(proposed), 3000)
            # no max_length: the provider's limit comes back as an error under the field
        blocks.append(
            {
                "type": "input",
                "block_id": f"{FIELD_BLOCK}{name}",
                "label": {"type": "plain_text", "text": _cut(name, 2000)},
                "element": element,
            }
        )
    return {
        "type": "modal",
        "callback_id": EDIT_CALLBACK,
        "private_metadata": str(request["id"]),
        "title": {"type": "plain_text", "text": "Edit before writing"},
        "submit": {"type": "plain_text", "text": "Write"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


def submitted_values(view: Mapping[str, Any]) -> dict[str, Any]:
    """Field name → the value typed or picked, from a view_submission's `view.state`."""
    found: dict[str, Any] = {}
    for block_id, actions in ((view.get("state") or {}).get("values") or {}).items():
        if not str(block_id).startswith(FIELD_BLOCK):
            continue
        answer = (actions or {}).get("value") or {}
        if answer.get("type") == "static_select":
            found[block_id[len(FIELD_BLOCK) :]] = (answer.get("selected_option") or {}).get("value")
        else:
            found[block_id[len(FIELD_BLOCK) :]] = answer.get("value")
    return found


def check_edits(
    values: Mapping[str, Any], schema: TargetSchema | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Edited values in the types the provider takes, and errors by block id for the modal."""
    typed: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, raw in values.items():
        facts = schema.field(name) if schema is not None else None
        block = f"{FIELD_BLOCK}{name}"
        text = "" if raw is None else str(raw).strip()
        if facts is None:
            typed[name] = text
            continue
        if not text:
            if facts.required:
                errors[block] = f"{name} is required"
            else:
                typed[name] = None
            continue
        if not facts.writable:
            errors[block] = f"{name} cannot be written"
        elif facts.picklist and facts.restricted and text not in facts.picklist:
            errors[block] = "pick one of: " + ", ".join(facts.picklist[:20])
        elif facts.length and len(text) > facts.length:
            errors[block] = f"at most {facts.length} characters ({len(text)} given)"
        elif facts.type in {"double", "currency", "percent", "int", "number"}:
            try:
                number = float(text.replace(",", ""))
            except ValueError:
                errors[block] = "a number, please"
                continue
            if facts.type == "int" and not number.is_integer():
                errors[block] = "a whole number, please"
                continue
            typed[name] = int(number) if facts.type == "int" else number
            continue
        elif facts.type == "date" and not _is_date(text):
            errors[block] = "a date as YYYY-MM-DD"
        else:
            typed[name] = text
    return typed, errors


def not_allowed(who: str) -> Permanent:
    return Permanent(f"{who} may not decide this review", provider_code="not_allowed")


def _is_date(text: str) -> bool:
    from datetime import date

    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(text, 3000)}]}


def _cut(text: str, limit: int) -> str:
    """Text already escaped (or plain_text, never escaped) cut to Slack's limit."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _button(text: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "_empty_"
    return f"`{clip(_plain(value), 300)}`"


def _plain(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _clock(seconds: Any) -> str:
    try:
        total = int(float(seconds))
    except (TypeError, ValueError):
        return str(seconds)
    return f"{total // 60}:{total % 60:02d}"


def _is_user(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("U") and value.isalnum()
