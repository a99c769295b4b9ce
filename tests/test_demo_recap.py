"""The demo prints a Slack recap's Block Kit as compact text: names, links, plain characters."""

from __future__ import annotations

from cli.demo import render_blocks
from connectors.slack_blocks import render_recap

FIELDS = {
    "title": "Globex <> Acme & co",
    "summary": "Discovery call.",
    "action_items": [
        {
            "title": "Send the SOC 2 report",
            "owner": "Dana Reyes",
            "owner_email": "dana@acme.io",
            "due_date": "2026-11-20",
            "url": "https://app.asana.com/0/1/2",
        },
        {"title": "Send a sample export", "owner": "Mindy Park", "owner_email": "mindy@globex.com"},
    ],
    "crm_changes": [{"field": "Pain points", "value": "word " * 100}],
    "links": [{"label": "Salesforce Task", "url": "https://sf.example/lightning/r/Task/00T/view"}],
}


def _mention(name: str | None, email: str | None) -> str | None:
    return "<@U0SBX0001>" if email == "dana@acme.io" else None


def test_recap_blocks_render_as_compact_text_with_names_and_links() -> None:
    # given the blocks the Slack connector posts for a recap
    (message,) = render_recap(FIELDS, _mention)
    # when the demo renders them
    lines = render_blocks(message.blocks, {"U0SBX0001": "Dana Reyes"}.__getitem__).plain.split("\n")
    # expect the header unescaped, mentions as names, links as URLs, long prose clipped
    assert lines[0] == "Globex <> Acme & co"
    assert (
        "• Send the SOC 2 report — @Dana Reyes · due 2026-11-20 · https://app.asana.com/0/1/2"
        in lines
    )
    assert "• Send a sample export — Mindy Park" in lines
    assert "• Salesforce Task https://sf.example/lightning/r/Task/00T/view" in lines
    pain = next(line for line in lines if line.startswith("• Pain points"))
    assert pain.endswith("…") and len(pain) == 160
    text = "\n".join(lines)
    assert "<@" not in text and "<http" not in text and "&amp;" not in text and "&lt;" not in text
