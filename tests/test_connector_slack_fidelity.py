"""Slack refuses what real Slack refuses (block text cap, channel names in chat.update,
method tiers, Marketplace history limits) and the connector lands recaps under those limits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from connectors.base import Op
from connectors.errors import Permanent, RateLimited
from connectors.slack import SlackConnector, slack_errors
from connectors.slack_blocks import MAX_MESSAGE_TEXT, block_text_length, render_recap
from sandbox.client import SandboxClient
from sandbox.server import Sandbox
from sandbox.slack import TOKEN
from sandbox.slack.content import MAX_BLOCKS_TEXT
from sandbox.slack.store import METHOD_TIERS, TIER_RATE
from tests.contract.case_slack import recap_fields, slack_config


@pytest.fixture(scope="module")
def slack() -> Iterator[Sandbox]:
    """The Slack emulator with its real limits; a channel burst that a long recap fits."""
    with Sandbox(only=["slack"], options={"slack": {"channel_burst": 20}}) as running:
        yield running


@pytest.fixture
def admin(slack: Sandbox) -> SandboxClient:
    slack.reset()
    return SandboxClient(slack.origins["slack"])


@pytest.fixture
def web(slack: Sandbox, admin: SandboxClient) -> WebClient:
    return WebClient(token=TOKEN, base_url=slack.urls["slack"], retry_handlers=[])


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _long_recap() -> Op:
    fields = recap_fields("Quarterly planning", "word " * 1_500)
    fields["action_items"] = [
        {"title": f"Task {n} " + "x" * 900, "owner": "Sam Patel", "owner_email": None,
         "due_date": None, "url": None}
        for n in range(40)
    ]  # fmt: skip
    return Op.plan(**{**_plan_args(), "fields": fields})


def _plan_args() -> dict[str, Any]:
    return {
        "org_id": "org-1", "meeting_id": "m-1", "connector": "slack", "connection": "slack-main",
        "action": "post_message", "item_key": "recap", "target": {"channel": "#sales-meetings"},
    }  # fmt: skip


def _ours(admin: SandboxClient) -> list[dict[str, Any]]:
    held: list[dict[str, Any]] = admin.state()["messages"]
    return [m for m in held if m["channel_name"] == "sales-meetings"]


# -- the cumulative block text limit -------------------------------------------------------
def test_blocks_under_their_own_limits_but_over_12k_together_are_refused(web: WebClient) -> None:
    # five sections of 2,900 characters: each under 3,000, together 14,500
    blocks = [_section("y" * 2_900) for _ in range(5)]
    with pytest.raises(SlackApiError) as caught:
        web.chat_postMessage(channel="#sales-meetings", text="recap", blocks=blocks)
    assert caught.value.response["error"] == "msg_blocks_too_long"
    # and four of them (11,600 + containers) fit
    web.chat_postMessage(channel="#sales-meetings", text="recap", blocks=blocks[:3])


def test_msg_blocks_too_long_is_permanent_with_slacks_code(web: WebClient) -> None:
    blocks = [_section("y" * 2_900) for _ in range(5)]
    with pytest.raises(Permanent) as caught, slack_errors():
        web.chat_postMessage(channel="#sales-meetings", text="recap", blocks=blocks)
    assert caught.value.provider_code == "msg_blocks_too_long"


def test_every_rendered_message_stays_under_the_cumulative_cap() -> None:
    messages = render_recap(_long_recap().fields, lambda name, email: None)
    assert len(messages) > 1
    for message in messages:
        size = sum(block_text_length(b) for b in message.blocks)
        assert size <= MAX_MESSAGE_TEXT < MAX_BLOCKS_TEXT - 20 * len(message.blocks)


def test_a_long_recap_lands_and_stays_idempotent(slack: Sandbox, admin: SandboxClient) -> None:
    connector = SlackConnector(slack_config(slack))
    op = _long_recap()
    # When it is posted (the emulator refuses any part over Slack's limits)
    receipt = connector.apply(op, None)
    held = _ours(admin)
    assert len(held) == receipt.extra["parts"] > 1
    assert all(f"Task {n} " in str([m["blocks"] for m in held]) for n in range(40))
    # Expect a re-apply with the receipt, and one after a lost response, to add nothing
    assert connector.apply(op, receipt).extra["ts"] == receipt.extra["ts"]
    found = SlackConnector(slack_config(slack)).find(op)
    assert found is not None and found.extra["ts"] == receipt.extra["ts"]
    connector.apply(op, found)
    assert [m["ts"] for m in _ours(admin)] == receipt.extra["ts"]


# -- chat.update needs the channel id -------------------------------------------------------
def test_chat_update_with_a_channel_name_is_channel_not_found(web: WebClient) -> None:
    posted = web.chat_postMessage(channel="#sales-meetings", text="first")
    with pytest.raises(SlackApiError) as caught:
        web.chat_update(channel="sales-meetings", ts=posted["ts"], text="edited")
    assert caught.value.response["error"] == "channel_not_found"
    web.chat_update(channel=posted["channel"], ts=posted["ts"], text="edited")


def test_the_connector_edits_by_channel_id(slack: Sandbox, admin: SandboxClient) -> None:
    connector = SlackConnector(slack_config(slack))
    op = _long_recap()
    first = connector.apply(op, None)
    edited = Op.plan(**{**_plan_args(), "fields": recap_fields("Planning", "Shorter now.")})
    second = connector.apply(edited, first)
    assert second.extra["ts"] == first.extra["ts"][:1]
    assert "Shorter now." in str(_ours(admin)[0]["blocks"])


# -- method tiers ---------------------------------------------------------------------------
ARGUMENTS: dict[str, dict[str, Any]] = {
    "auth.test": {},
    "chat.update": {"channel": "C0SBX0001", "ts": "1.0", "text": "x"},
    "chat.delete": {"channel": "C0SBX0001", "ts": "1.0"},
    "conversations.history": {"channel": "C0SBX0001"},
    "conversations.info": {"channel": "C0SBX0001"},
    "conversations.list": {},
    "conversations.open": {"users": "U0SBX0001"},
    "users.info": {"user": "U0SBX0001"},
    "users.lookupByEmail": {"email": "nobody@example.com"},
}


@pytest.mark.parametrize(
    "method", [pytest.param(m, id=f"{m}-tier{t}") for m, t in METHOD_TIERS.items()]
)
def test_each_method_the_connector_calls_has_its_tier(web: WebClient, method: str) -> None:
    allowed = TIER_RATE[METHOD_TIERS[method]]
    served = 0
    limited: SlackApiError | None = None
    while limited is None and served < allowed * 2:
        try:
            web.api_call(method, json=ARGUMENTS[method])
        except SlackApiError as refused:  # message_not_found and the like: still a call
            if refused.response.status_code == 429:
                limited = refused
                break
        served += 1
    # a minute's worth goes through (plus what refills while the loop runs), then 429
    assert limited is not None
    assert allowed <= served <= allowed * 1.2
    assert int(limited.response.headers["Retry-After"]) >= 1


def test_a_tier_429_is_rate_limited_with_the_wait(slack: Sandbox, web: WebClient) -> None:
    with pytest.raises(SlackApiError):  # spend conversations.list's minute (Tier 2)
        for _ in range(TIER_RATE[2] * 2):
            web.conversations_list()
    connector = SlackConnector(slack_config(slack))
    with pytest.raises(RateLimited) as caught:
        connector.find(_long_recap())  # resolves #sales-meetings with conversations.list
    assert caught.value.retry_after >= 1


def test_the_connector_covers_every_method_it_calls() -> None:
    import inspect

    import connectors.slack as module

    called = {
        name.replace("_", ".", 1)
        for name in (
            "auth_test",
            "chat_update",
            "chat_delete",
            "conversations_history",
            "conversations_info",
            "conversations_list",
            "conversations_open",
            "users_lookupByEmail",
        )
        if f"client.{name}(" in inspect.getsource(module)
    }
    assert called <= set(METHOD_TIERS)


# -- apps outside the Marketplace -----------------------------------------------------------
def test_history_outside_the_marketplace_is_15_messages_once_a_minute() -> None:
    options = {"slack": {"marketplace": False, "channel_burst": 30}}
    with Sandbox(only=["slack"], options=options) as running:
        web = WebClient(token=TOKEN, base_url=running.urls["slack"], retry_handlers=[])
        for n in range(20):
            web.chat_postMessage(channel="C0SBX0001", text=f"m{n}")
        page = web.conversations_history(channel="C0SBX0001", limit=200)
        assert len(page["messages"]) == 15 and page["has_more"]
        with pytest.raises(SlackApiError) as caught:
            web.conversations_history(
                channel="C0SBX0001", cursor=page["response_metadata"]["next_cursor"]
            )
        assert caught.value.response.status_code == 429
        assert int(caught.value.response.headers["Retry-After"]) > 1


def test_outside_the_marketplace_find_reads_one_page_and_still_finds_a_fresh_recap() -> None:
    options = {"slack": {"marketplace": False, "channel_burst": 30}}
    with Sandbox(only=["slack"], options=options) as running:
        config = slack_config(running).model_copy(update={"options": {"marketplace": False}})
        connector = SlackConnector(config)
        op = Op.plan(**{**_plan_args(), "fields": recap_fields("Standup", "Short.")})
        receipt = connector.apply(op, None)
        found = SlackConnector(config).find(op)  # one history call: within the 1/min budget
        assert found is not None and found.extra["ts"] == receipt.extra["ts"]
