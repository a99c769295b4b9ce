"""The Slack connector through slack-sdk against the emulator: rendering, escaping, limits."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.base import ConnectionConfig, Op
from connectors.errors import InvalidMapping, Permanent, RateLimited, Transient
from connectors.slack import SlackConnector, _DirectWebClient
from connectors.slack_blocks import (
    MAX_BLOCKS,
    MAX_SECTION,
    escape,
    link,
    render_recap,
)
from sandbox.client import SandboxClient
from sandbox.server import Sandbox
from sandbox.slack import TOKEN, SlackSandbox
from tests.contract.case_slack import recap_fields


@pytest.fixture(scope="module")
def slack() -> Iterator[Sandbox]:
    """Only the Slack emulator; per-channel limit slow enough to hit on purpose."""
    options = {"slack": {"channel_rate": 0.01, "channel_burst": 4, "workspace_burst": 1000}}
    with Sandbox(only=["slack"], options=options) as running:
        yield running


@pytest.fixture
def admin(slack: Sandbox) -> SandboxClient:
    slack.reset()
    return SandboxClient(slack.origins["slack"])


@pytest.fixture
def connector(slack: Sandbox, admin: SandboxClient) -> SlackConnector:
    config = ConnectionConfig(
        name="slack-main",
        provider="slack",
        base_url=slack.urls["slack"],
        credentials={"bot_token": TOKEN},
    )
    return SlackConnector(config)


def plan(fields: dict[str, Any], channel: str = "#sales-meetings", key: str = "recap") -> Op:
    return Op.plan(
        org_id="org-1",
        meeting_id="m-1",
        connector="slack",
        connection="slack-main",
        action="post_message",
        item_key=key,
        target={"channel": channel},
        fields=fields,
    )


def messages(admin: SandboxClient, channel: str = "sales-meetings") -> list[dict[str, Any]]:
    held: list[dict[str, Any]] = admin.state()["messages"]
    return [m for m in held if m["channel_name"] == channel]


def texts(message: dict[str, Any]) -> list[str]:
    """Every text string in a message: fallback, block texts and context elements."""
    found = [message["text"]]
    for block in message.get("blocks") or []:
        if isinstance(block.get("text"), dict):
            found.append(block["text"]["text"])
        for element in block.get("elements", []):
            text = element.get("text")
            # context elements carry text; buttons (the recap's 👍/👎) a plain_text object
            found += [text] if isinstance(text, str) else [text["text"]] if text else []
    return found


# -- escaping ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("hostile", "forbidden"),
    [
        pytest.param("Ping <!channel> now", "<!channel>", id="channel-broadcast"),
        pytest.param("<!here|here> please", "<!here", id="here-broadcast"),
        pytest.param("<!everyone>", "<!everyone>", id="everyone"),
        pytest.param("Blame <@U0SBX0002>", "<@U0SBX0002>", id="user-mention"),
        pytest.param("<https://evil.example|Click me>", "<https://evil.example", id="link"),
        pytest.param("<#C0SBX0001>", "<#C0SBX0001>", id="channel-link"),
        pytest.param("<!subteam^S123>", "<!subteam", id="usergroup"),
        pytest.param("&lt;!channel&gt;", "&lt;!channel&gt;", id="pre-escaped"),
    ],
)
def test_untrusted_text_cannot_inject_control_sequences(
    connector: SlackConnector, admin: SandboxClient, hostile: str, forbidden: str
) -> None:
    # Given a recap whose every free-text field carries the hostile string
    fields = recap_fields(hostile, hostile)
    fields["action_items"][0].update(
        title=hostile, owner=hostile, owner_email=None, due_date=hostile
    )
    fields["crm_changes"] = [{"field": hostile, "value": hostile}]
    fields["links"] = [{"label": hostile, "url": "https://ok.example/a"}]
    # When it is posted
    connector.apply(plan(fields), None)
    # Expect the sequence nowhere in what Slack holds, yet the words still readable
    (message,) = messages(admin)
    for text in texts(message):
        assert forbidden not in text
    assert escape(hostile) in message["text"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            "https://ok.example/x?a=1&b=2", "<https://ok.example/x?a=1&amp;b=2|go>", id="plain"
        ),
        pytest.param(
            "https://ok.example/x|<!channel>",
            "<https://ok.example/x%7C%3C!channel%3E|go>",
            id="pipe-breakout",
        ),
        pytest.param("javascript:alert(1)", "go", id="script-scheme"),
        pytest.param(None, "go", id="missing"),
    ],
)
def test_links_only_for_safe_urls(url: str | None, expected: str) -> None:
    assert link(url, "go") == expected


# -- rendering ----------------------------------------------------------------------------
def test_owner_found_by_email_is_mentioned_and_others_are_named(
    connector: SlackConnector, admin: SandboxClient
) -> None:
    fields = recap_fields("Weekly sync", "All good.")
    fields["action_items"] = [
        {
            "title": "Ship it",
            "owner": "Dana Reyes",
            "owner_email": "dana@acme.io",
            "due_date": "2026-12-01",
            "url": None,
        },
        {
            "title": "Review it",
            "owner": "Hank Scorpio",
            "owner_email": "hank@globex.com",
            "due_date": None,
            "url": None,
        },
        {
            "title": "Again",
            "owner": "Dana Reyes",
            "owner_email": "DANA@acme.io",
            "due_date": None,
            "url": None,
        },
    ]
    connector.apply(plan(fields), None)
    body = "\n".join(texts(messages(admin)[0]))
    dana = next(u["id"] for u in admin.state()["users"] if u["email"] == "dana@acme.io")
    assert f"• Ship it — <@{dana}> · due 2026-12-01" in body
    assert "• Review it — Hank Scorpio" in body
    # Looked up once per address, whatever its case.
    assert admin.stats()["requests"]["POST /api/users.lookupByEmail"] == 2


def test_long_recap_is_split_and_every_part_kept(
    connector: SlackConnector, admin: SandboxClient
) -> None:
    # Given far more than one message can hold
    fields = recap_fields("Quarterly planning", "word " * 2_000)
    fields["action_items"] = [
        {
            "title": f"Task {n} " + "x" * 900,
            "owner": "Sam Patel",
            "owner_email": None,
            "due_date": None,
            "url": None,
        }
        for n in range(20)  # 4 messages under Slack's ~12k characters each: the channel's burst
    ]
    op = plan(fields)
    # When it is posted, and re-applied with its receipt after an edit
    receipt = connector.apply(op, None)
    held = messages(admin)
    # Expect several messages, each within Slack's limits, all in the receipt
    assert len(held) > 1
    assert receipt.extra["ts"] == [m["ts"] for m in held]
    for message in held:
        assert len(message["blocks"]) <= MAX_BLOCKS
        assert all(len(t) <= MAX_SECTION for t in texts(message))
    assert sum("Task " in t for m in held for t in texts(m)) >= 1
    assert all(f"Task {n} " in "".join(t for m in held for t in texts(m)) for n in range(20))


def test_shorter_recap_on_update_edits_first_and_deletes_the_rest(
    connector: SlackConnector, admin: SandboxClient
) -> None:
    long = recap_fields("Planning", "word " * 2_000)
    long["action_items"] = [dict(long["action_items"][0], title="x" * 900)] * 20
    first = connector.apply(plan(long), None)
    second = connector.apply(plan(recap_fields("Planning", "Short now.")), first)
    held = messages(admin)
    assert len(first.extra["ts"]) > 1
    assert [m["ts"] for m in held] == second.extra["ts"] == first.extra["ts"][:1]
    assert "Short now." in held[0]["text"]


def test_render_keeps_every_message_under_limits() -> None:
    fields = recap_fields("T" * 500, "&" * 10_000)
    parts = render_recap(fields, lambda name, email: None)
    assert len(parts) >= 1
    for part in parts:
        assert len(part.blocks) <= MAX_BLOCKS
        head = part.blocks[0]
        header = (head.get("text") or head["elements"][0])["text"]
        assert len(header) <= 500 + 40
        for block in part.blocks:
            text = (block.get("text") or {}).get("text", "")
            assert len(text) <= MAX_SECTION
            assert "&amp" not in text.replace("&amp;", "")  # no entity cut in half


# -- errors and limits --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("channel", "code"),
    [
        pytest.param("#general", "not_in_channel", id="not-in-channel"),
        pytest.param("#old-deals", "is_archived", id="archived"),
        pytest.param("#no-such-channel", "channel_not_found", id="unknown"),
    ],
)
def test_channel_problems_are_permanent(
    connector: SlackConnector, admin: SandboxClient, channel: str, code: str
) -> None:
    with pytest.raises(Permanent) as caught:
        connector.apply(plan(recap_fields("T", "S"), channel=channel), None)
    assert isinstance(caught.value, InvalidMapping)
    assert caught.value.provider_code == code
    assert admin.state()["messages"] == []


def test_emulators_own_channel_limit_becomes_rate_limited(
    connector: SlackConnector, admin: SandboxClient
) -> None:
    # Given the channel's burst of 4 spent by four different recaps
    for n in range(4):
        connector.apply(plan(recap_fields(f"Recap {n}", None), key=f"k{n}"), None)
    # When a fifth arrives at once
    with pytest.raises(RateLimited) as caught:
        connector.apply(plan(recap_fields("Recap 5", None), key="k5"), None)
    # Expect the emulator's own Retry-After, and nothing extra posted
    assert caught.value.retry_after >= 1
    assert len(messages(admin)) == 4
    assert admin.stats()["http_429"] == 1


def test_describe_reports_membership_and_archival(connector: SlackConnector) -> None:
    good = connector.describe({"channel": "#sales-meetings"})
    outside = connector.describe({"channel": "#general"})
    archived = connector.describe({"channel": "#old-deals"})
    missing = connector.describe({"channel": "#nope"})
    assert good.exists and good.notes == []
    assert outside.exists and "not in #general" in outside.notes[0]
    assert archived.exists and "archived" in archived.notes[0]
    assert not missing.exists


def test_receipt_points_at_the_message(connector: SlackConnector, admin: SandboxClient) -> None:
    receipt = connector.apply(plan(recap_fields("T", "S")), None)
    (message,) = messages(admin)
    assert receipt.external_id == f"{message['channel']}:{message['ts']}"
    assert receipt.url and receipt.url.endswith(
        f"/archives/{message['channel']}/p{message['ts'].replace('.', '')}"
    )


def test_find_returns_none_when_channel_has_only_other_messages(
    connector: SlackConnector, admin: SandboxClient
) -> None:
    connector.apply(plan(recap_fields("Other", None), key="other"), None)
    assert connector.find(plan(recap_fields("Mine", None), key="mine")) is None


def test_env_proxy_is_ignored_for_loopback(slack: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a proxy in the environment that does not exist
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    config = ConnectionConfig(
        name="s", provider="slack", base_url=slack.urls["slack"], credentials={"bot_token": TOKEN}
    )
    # When the connector talks to the loopback sandbox
    connector = SlackConnector(config)
    # Expect a direct connection
    assert isinstance(connector.client, _DirectWebClient)
    assert connector.client.proxy is None
    assert connector.describe({"channel": "#sales-meetings"}).exists


# -- recovery and direct messages ------------------------------------------------------------
def test_recap_cut_short_by_rate_limit_is_completed_after_find(
    slack: Sandbox, connector: SlackConnector, admin: SandboxClient
) -> None:
    # Given a recap of more parts than the channel's burst of 4
    long = recap_fields("Planning", "word " * 2_000)
    long["action_items"] = [dict(long["action_items"][0], title="x" * 900)] * 40
    op = plan(long)
    with pytest.raises(RateLimited):
        connector.apply(op, None)
    posted = len(messages(admin))
    # When the limit has passed and the worker recovers with find() then apply()
    provider = slack.providers["slack"]
    assert isinstance(provider, SlackSandbox)
    with provider.lock:
        provider.channel_buckets.clear()  # stands in for waiting out Retry-After
    found = connector.find(op)
    assert found is not None and len(found.extra["ts"]) == posted < found.extra["parts"]
    receipt = connector.apply(op, found)
    # Expect the missing parts posted once, the first ones kept
    held = messages(admin)
    assert receipt.extra["ts"][:posted] == found.extra["ts"]
    assert [m["ts"] for m in held] == receipt.extra["ts"]
    assert len(held) == receipt.extra["parts"]


def dm_messages(admin: SandboxClient) -> list[dict[str, Any]]:
    held: list[dict[str, Any]] = admin.state()["messages"]
    return [m for m in held if m["channel"].startswith("D")]


def owners_recap(summary: str) -> dict[str, Any]:
    fields = recap_fields("Globex call", summary)
    fields["dm_owners"] = True
    fields["action_items"] = [
        {
            "title": "Send pricing",
            "owner": "Dana Reyes",
            "owner_email": "dana@acme.io",
            "due_date": "2026-12-01",
            "url": None,
        },
        {
            "title": "Book demo",
            "owner": "Hank Scorpio",
            "owner_email": "hank@globex.com",
            "due_date": None,
            "url": None,
        },
        {
            "title": "Draft SOW",
            "owner": "Dana Reyes",
            "owner_email": "dana@acme.io",
            "due_date": None,
            "url": None,
        },
    ]
    return fields


def test_each_known_owner_gets_one_dm_with_their_items(
    connector: SlackConnector, admin: SandboxClient
) -> None:
    receipt = connector.apply(plan(owners_recap("v1")), None)
    (dm,) = dm_messages(admin)
    body = "\n".join(texts(dm))
    assert "Send pricing" in body and "Draft SOW" in body and "Book demo" not in body
    assert list(receipt.extra["dms"]) == ["U0SBX0001"]
    assert dm["metadata"]["event_payload"]["op_key"].endswith(":dm:U0SBX0001")


def test_dms_are_edited_not_resent_on_change(
    connector: SlackConnector, admin: SandboxClient
) -> None:
    first = connector.apply(plan(owners_recap("v1")), None)
    changed = owners_recap("v2")
    changed["action_items"][0]["title"] = "Send revised pricing"
    second = connector.apply(plan(changed), first)
    third = connector.apply(plan(changed), second)
    (dm,) = dm_messages(admin)
    assert "Send revised pricing" in "\n".join(texts(dm))
    assert second.extra["dms"] == first.extra["dms"] == third.extra["dms"]
    assert admin.stats()["requests"]["POST /api/chat.postMessage"] == 2


def test_dms_after_a_lost_channel_post_are_sent_once(
    connector: SlackConnector, admin: SandboxClient
) -> None:
    op = plan(owners_recap("v1"))
    admin.arm("lost_response", method="POST", path="/api/chat.postMessage")
    with pytest.raises(Transient):
        connector.apply(op, None)
    found = connector.find(op)
    assert found is not None
    connector.apply(op, found)
    connector.apply(op, connector.find(op))
    assert len(messages(admin)) == 1
    assert len(dm_messages(admin)) == 1


def test_unknown_action_is_an_invalid_mapping(connector: SlackConnector) -> None:
    op = plan(recap_fields("T", "S")).model_copy(update={"action": "upsert"})
    with pytest.raises(InvalidMapping, match="post_message"):
        connector.apply(op, None)


def test_sdk_debug_logging_never_carries_recap_text(
    connector: SlackConnector, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        connector.apply(plan(recap_fields("Secret roadmap", "Confidential numbers")), None)
    assert "Confidential numbers" not in caplog.text
