"""Block Kit rendering of a meeting recap, with everything untrusted escaped.

Text in a recap comes from transcripts and from the LLM, so it is untrusted: Slack reads
`<!channel>`, `<@U…>` and `<url|label>` as control sequences, and escaping `&`, `<` and `>`
(Slack's own rule, https://api.slack.com/reference/surfaces/formatting#escaping) is what
turns them back into plain text. Only mentions we looked up ourselves are left unescaped.

Slack caps a message at 50 blocks and a section's text at 3,000 characters
(https://api.slack.com/reference/block-kit/blocks), and refuses a message whose blocks
together carry more than about 12,000 characters (`msg_blocks_too_long`; undocumented but
enforced, slackapi/bolt-js#2509), so a long recap becomes several messages, each within all
three limits: at most MAX_MESSAGE_TEXT characters of text, leaving room for containers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from connectors.slack_ratings import rating_block

MAX_BLOCKS = 50
MAX_SECTION = 3_000
MAX_HEADER = 150
MAX_FALLBACK = 1_000  # the notification preview; Slack allows 40,000 but nobody reads that
MAX_MESSAGE_TEXT = 10_000  # text of all blocks in one message; Slack refuses ~12,000
MAX_HEAD_TEXT = 600  # the header, or the "continued" line, of each message
MAX_URL = 1_000  # longer URLs are shown as text, so one line always fits a section
SAFE_SCHEMES = {"http", "https", "mailto"}

Block = dict[str, Any]
# Given an owner's name and email, the `<@U…>` mention to use, or None for plain text.
Mentioner = Callable[[str | None, str | None], str | None]


@dataclass
class SlackMessage:
    """One chat.postMessage worth of recap: Block Kit blocks and the plain-text fallback."""

    text: str
    blocks: list[Block] = field(default_factory=list)


def escape(text: Any) -> str:
    """Slack's escaping of untrusted text: only &, < and >."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: Any, limit: int) -> str:
    """Escape `text` and cut it (between entities, never inside one) to `limit` characters."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    out: list[str] = []
    size = 0
    for char in str(text):
        piece = escape(char)
        if size + len(piece) > limit - 1:
            break
        out.append(piece)
        size += len(piece)
    return "".join(out) + "…"


def safe_url(url: Any) -> str | None:
    """A URL fit for `<url|label>`: http(s) or mailto only, with no character that breaks out."""
    if not isinstance(url, str) or not url.strip():
        return None
    url = url.strip()
    if len(url) > MAX_URL or urlsplit(url).scheme.lower() not in SAFE_SCHEMES:
        return None
    # Percent-encode whatever could end the link or start a new control sequence; `&`
    # keeps its meaning in a query string, so it is escaped the Slack way instead.
    return quote(url, safe=":/?#[]@!$&'()*+,;=%-._~").replace("&", "&amp;")


def link(url: Any, label: Any) -> str:
    """A link whose label is escaped; an unsafe URL is shown as escaped text instead."""
    target = safe_url(url)
    if target is None:
        return clip(label or url or "", 500)
    return f"<{target}|{clip(label or url, 500).replace('|', '¦')}>"


def render_recap(
    fields: Mapping[str, Any], mention: Mentioner, rating_key: str | None = None
) -> list[SlackMessage]:
    """The recap as one or more messages, each within Slack's block and text limits.

    With `rating_key` (the recap op's key) it ends with 👍/👎 controls (slack_ratings.py).
    """
    title = str(fields.get("title") or "Meeting recap")
    body: list[Block] = []
    if fields.get("summary"):
        body += _sections([escape(fields["summary"])])
    if fields.get("meeting_url"):
        body.append(_context(f"Meeting: {link(fields['meeting_url'], 'recording and notes')}"))
    items = list(fields.get("action_items") or [])
    if items:
        body += [{"type": "divider"}, *_sections([f"*Action items ({len(items)})*"])]
        body += _sections(item_line(item, mention) for item in items)
    changes = list(fields.get("crm_changes") or [])
    if changes:
        body += [{"type": "divider"}, *_sections([crm_heading(fields.get("crm_status"))])]
        body += _sections(
            f"• {clip(c.get('field', ''), 200)}: {clip(_value(c.get('value')), 1_000)}"
            for c in changes
        )
    links = list(fields.get("links") or [])
    if links:
        body += [{"type": "divider"}, *_sections(["*Links*"])]
        body += _sections(f"• {link(x.get('url'), x.get('label'))}" for x in links)
    if rating_key:
        body.append(rating_block(rating_key, items))
    return _paginate(title, body, fallback=_fallback(title, fields.get("summary")))


def crm_heading(status: Any) -> str:
    """The CRM section's heading: written, refused (naming where), or only proposed.

    Without a status nothing confirms the write, so the changes read as proposed.
    """
    status = status if isinstance(status, Mapping) else {}
    if status.get("state") == "written":
        return "*CRM updates* (written)"
    if status.get("state") in {"failed", "partial"}:
        where = ", ".join(clip(d, 100) for d in status.get("failed") or []) or "the CRM"
        what = "only partly written" if status["state"] == "partial" else "NOT written"
        return f"*CRM updates: {what}* ({where} failed)"
    return "*Proposed CRM updates* (not written)"


def render_owner_items(
    title: str, items: Sequence[Mapping[str, Any]], meeting_url: str | None, mention: Mentioner
) -> list[SlackMessage]:
    """A direct message listing one owner's action items from a meeting."""
    body = _sections([f"Your action items from *{escape(title)}*:"])
    body += _sections(item_line(item, mention) for item in items)
    if meeting_url:
        body.append(_context(f"Meeting: {link(meeting_url, 'recording and notes')}"))
    fallback = clip(f"Your action items from {title}", MAX_FALLBACK)
    return _paginate(title, body, fallback=fallback, header=False)


def item_line(item: Mapping[str, Any], mention: Mentioner) -> str:
    """One action item as a bullet: title, owner (mentioned when known), due date, link."""
    parts = [f"• {clip(item.get('title') or 'Untitled', 1_000)}"]
    name, email = item.get("owner"), item.get("owner_email")
    who = mention(name, email) if (name or email) else None
    if who is None and (name or email):
        who = clip(name or email, 200)
    if who:
        parts.append(f"— {who}")
    if item.get("due_date"):
        parts.append(f"· due {clip(item['due_date'], 40)}")
    if item.get("url"):
        parts.append(f"· {link(item['url'], 'open')}")
    if item.get("status") == "failed":
        parts.append("· _task NOT created_")
    elif item.get("status") == "proposed":
        parts.append("· _proposed, not created yet_")
    return " ".join(parts)


# -- layout -----------------------------------------------------------------------------
def _section(text: str) -> Block:
    # verbatim: Slack must not auto-link or auto-mention anything in our text.
    return {"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text, "verbatim": True}]}


def _sections(lines: Iterable[str]) -> list[Block]:
    """Pack lines into as few sections as fit; split a line only when it alone is too long."""
    blocks: list[Block] = []
    current = ""
    for line in lines:
        for piece in _pieces(line, MAX_SECTION):
            if current and len(current) + 1 + len(piece) > MAX_SECTION:
                blocks.append(_section(current))
                current = ""
            current = f"{current}\n{piece}" if current else piece
    if current:
        blocks.append(_section(current))
    return blocks


def _pieces(text: str, limit: int) -> list[str]:
    """Cut already-escaped text into chunks of at most `limit`, at whitespace when possible."""
    pieces = []
    while len(text) > limit:
        cut = text.rfind(" ", 0, limit)
        cut = cut if cut > limit // 2 else limit
        # Never cut an entity such as &amp; in half.
        amp = text.rfind("&", max(0, cut - 5), cut)
        if amp != -1 and ";" not in text[amp:cut]:
            cut = amp
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    return [*pieces, text] if text else pieces


def _paginate(
    title: str, body: list[Block], *, fallback: str, header: bool = True
) -> list[SlackMessage]:
    """Split blocks into messages of at most MAX_BLOCKS, each opening with where it belongs."""
    chunks = _chunks(body) or [[]]
    chunks = [
        [b for j, b in enumerate(c) if not (j == 0 and b["type"] == "divider")] for c in chunks
    ]
    total = len(chunks)
    messages = []
    for n, chunk in enumerate(chunks, start=1):
        if n == 1:
            head = (
                [
                    {
                        "type": "header",
                        "text": {"type": "plain_text", "text": clip(title, MAX_HEADER)},
                    }
                ]
                if header
                else []
            )
            text = fallback if total == 1 else f"{fallback} (part 1 of {total})"
        else:
            head = [_context(f"*{clip(title, 500)}* (continued, part {n} of {total})")]
            text = clip(f"{title} (continued, part {n} of {total})", MAX_FALLBACK)
        messages.append(SlackMessage(text=text, blocks=head + chunk))
    return messages


def _chunks(body: list[Block]) -> list[list[Block]]:
    """Blocks in runs that fit one message: MAX_BLOCKS - 1 blocks and MAX_MESSAGE_TEXT text,
    each run leaving one slot and MAX_HEAD_TEXT characters for its header line."""
    chunks: list[list[Block]] = []
    current: list[Block] = []
    size = 0
    for block in body:
        length = block_text_length(block)
        full = len(current) >= MAX_BLOCKS - 1 or size + length > MAX_MESSAGE_TEXT - MAX_HEAD_TEXT
        if current and full:
            chunks.append(current)
            current, size = [], 0
        current.append(block)
        size += length
    return [*chunks, current] if current else chunks


def block_text_length(block: Any) -> int:
    """Characters of text a block carries, the way Slack adds them up for its message cap."""
    if isinstance(block, dict):
        own = len(block["text"]) if isinstance(block.get("text"), str) else 0
        return own + sum(block_text_length(v) for k, v in block.items() if k != "text" or own == 0)
    if isinstance(block, list):
        return sum(block_text_length(v) for v in block)
    return 0


def _fallback(title: str, summary: Any) -> str:
    text = f"{title}: {summary}" if summary else f"Recap: {title}"
    return clip(text.replace("\n", " "), MAX_FALLBACK)


def _value(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return f"{int(value):,}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:,}"
    return "—" if value is None else str(value)
