"""Task notes in Asana's rich text: plain `notes` derived from `html_notes`, and back.

`html_notes` must be XML in <body> using Asana's tag and attribute set; anything else is
refused with Asana's 400 message, as the real API does.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from typing import Any

from sandbox.asana.errors import AsanaError

# Asana's rich text for task notes (developers.asana.com/docs/rich-text): no <p>, <br>, <div>.
RICH_TEXT_TAGS = frozenset(
    {
        "body",
        "strong",
        "em",
        "u",
        "s",
        "a",
        "code",
        "pre",
        "blockquote",
        "ul",
        "ol",
        "li",
        "h1",
        "h2",
        "hr",
        "img",
        "table",
        "tr",
        "td",
    }
)
RICH_TEXT_ATTRIBUTES = {
    "a": frozenset({"href"}),
    "img": frozenset({"src", "alt", "style"}),
    "td": frozenset({"width"}),
}


def _plain_text(html: Any) -> str:
    """Asana derives `notes` from `html_notes`: XML in <body>, from its rich-text tag set."""
    if not isinstance(html, str):
        raise AsanaError(400, "html_notes: Must be a string")
    try:
        root = ElementTree.fromstring(html)
    except ElementTree.ParseError as exc:
        raise AsanaError(400, "html_notes: XML is invalid") from exc
    if root.tag != "body":
        raise AsanaError(400, "html_notes: The root element must be <body>")
    for element in root.iter():
        if element.tag not in RICH_TEXT_TAGS:
            raise AsanaError(400, f"html_notes: Tag <{element.tag}> is not supported")
        allowed = RICH_TEXT_ATTRIBUTES.get(element.tag, frozenset())
        for name in element.attrib:
            if name not in allowed and not name.startswith("data-asana-"):
                raise AsanaError(
                    400, f"html_notes: Attribute {name} is not allowed on <{element.tag}>"
                )
    return "".join(root.itertext())


def _html(text: str) -> str:
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f"<body>{escaped}</body>"
