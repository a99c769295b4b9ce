"""The Slack emulator answers as Slack does: ok/error bodies, limits, auth, pagination."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sandbox.server import Sandbox
from sandbox.slack import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}
RECAP_META = {"event_type": "meetsync_op", "event_payload": {"op_key": "k1"}}


@pytest.fixture(scope="module")
def slack() -> Iterator[Sandbox]:
    """Only the Slack emulator, with a per-channel limit slow enough to hit on purpose."""
    options = {"slack": {"channel_rate": 0.01, "channel_burst": 3}}
    with Sandbox(only=["slack"], options=options) as running:
        yield running


@pytest.fixture
def api(slack: Sandbox) -> Iterator[httpx.Client]:
    slack.reset()
    with httpx.Client(base_url=slack.urls["slack"], trust_env=False, timeout=10) as client:
        yield client


def call(api: httpx.Client, method: str, **args: Any) -> dict[str, Any]:
    response = api.post(method, json=args, headers=AUTH)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_post_then_history_shows_metadata_only_when_asked(api: httpx.Client) -> None:
    posted = call(api, "chat.postMessage", channel="#eng-standup", text="hi", metadata=RECAP_META)
    assert posted["ok"] and posted["channel"].startswith("C")
    plain = call(api, "conversations.history", channel=posted["channel"])
    full = call(api, "conversations.history", channel=posted["channel"], include_all_metadata=True)
    assert "metadata" not in plain["messages"][0]
    assert full["messages"][0]["metadata"] == RECAP_META
    assert full["messages"][0]["ts"] == posted["ts"]


def test_form_encoded_call_with_token_field_works(api: httpx.Client) -> None:
    response = api.post("auth.test", data={"token": TOKEN})
    assert response.json()["ok"] is True
    assert response.json()["user_id"].startswith("U")


@pytest.mark.parametrize(
    ("channel", "args", "error"),
    [
        pytest.param("#nope", {"text": "x"}, "channel_not_found", id="unknown-channel"),
        pytest.param("#general", {"text": "x"}, "not_in_channel", id="bot-not-member"),
        pytest.param("#old-deals", {"text": "x"}, "is_archived", id="archived"),
        pytest.param("#eng-standup", {}, "no_text", id="no-text"),
        pytest.param("#eng-standup", {"text": "x" * 40_001}, "msg_too_long", id="too-long"),
        pytest.param(
            "#eng-standup",
            {"text": "x", "blocks": [{"type": "divider"}] * 51},
            "invalid_blocks",
            id="too-many-blocks",
        ),
        pytest.param(
            "#eng-standup",
            {
                "text": "x",
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3001}}],
            },
            "invalid_blocks",
            id="section-too-long",
        ),
    ],
)
def test_post_message_errors(
    api: httpx.Client, channel: str, args: dict[str, Any], error: str
) -> None:
    answer = call(api, "chat.postMessage", channel=channel, **args)
    assert answer["ok"] is False
    assert answer["error"] == error


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        pytest.param({}, "not_authed", id="no-token"),
        pytest.param({"Authorization": "Bearer xoxb-wrong"}, "invalid_auth", id="wrong-token"),
    ],
)
def test_bad_tokens_are_refused(api: httpx.Client, headers: dict[str, str], error: str) -> None:
    answer = api.post("auth.test", headers=headers).json()
    assert answer == {"ok": False, "error": error}


def test_revoked_token_until_restored(api: httpx.Client, slack: Sandbox) -> None:
    admin = httpx.Client(base_url=slack.origins["slack"], trust_env=False)
    admin.post("/_sandbox/auth", json={"action": "revoke"}).raise_for_status()
    assert call(api, "auth.test")["error"] == "token_revoked"
    admin.post("/_sandbox/auth", json={"action": "restore"}).raise_for_status()
    assert call(api, "auth.test")["ok"] is True


def test_per_channel_limit_answers_429_with_retry_after(api: httpx.Client) -> None:
    # Given a burst of 3 per channel, refilled at 1 per 100 s
    for n in range(3):
        assert call(api, "chat.postMessage", channel="#eng-standup", text=f"m{n}")["ok"]
    # When a fourth post arrives
    refused = api.post(
        "chat.postMessage", json={"channel": "#eng-standup", "text": "m4"}, headers=AUTH
    )
    # Expect Slack's 429 with its wait, while another channel still accepts posts
    assert refused.status_code == 429
    assert refused.json() == {"ok": False, "error": "ratelimited"}
    assert int(refused.headers["Retry-After"]) >= 1
    assert call(api, "chat.postMessage", channel="#sales-meetings", text="ok")["ok"]


def test_update_and_its_errors(api: httpx.Client) -> None:
    posted = call(api, "chat.postMessage", channel="#eng-standup", text="v1")
    updated = call(api, "chat.update", channel=posted["channel"], ts=posted["ts"], text="v2")
    missing = call(api, "chat.update", channel=posted["channel"], ts="1.000001", text="v3")
    history = call(api, "conversations.history", channel=posted["channel"])
    assert updated["ok"] and updated["text"] == "v2"
    assert missing == {"ok": False, "error": "message_not_found"}
    assert [m["text"] for m in history["messages"]] == ["v2"]


def test_history_pages_with_next_cursor(api: httpx.Client) -> None:
    for n in range(3):
        call(api, "chat.postMessage", channel="#customer-escalations", text=f"m{n}")
    first = call(api, "conversations.history", channel="#customer-escalations", limit=2)
    cursor = first["response_metadata"]["next_cursor"]
    second = call(
        api, "conversations.history", channel="#customer-escalations", limit=2, cursor=cursor
    )
    assert [m["text"] for m in first["messages"]] == ["m2", "m1"] and first["has_more"]
    assert [m["text"] for m in second["messages"]] == ["m0"] and not second["has_more"]
    assert second["response_metadata"]["next_cursor"] == ""


def test_users_and_dms(api: httpx.Client) -> None:
    found = call(api, "users.lookupByEmail", email="Dana@acme.io")
    missing = call(api, "users.lookupByEmail", email="nobody@acme.io")
    opened = call(api, "conversations.open", users=found["user"]["id"])
    posted = call(api, "chat.postMessage", channel=opened["channel"]["id"], text="your items")
    assert found["user"]["real_name"] == "Dana Reyes"
    assert missing == {"ok": False, "error": "users_not_found"}
    assert opened["channel"]["id"].startswith("D") and posted["ok"]


def test_injected_429_looks_like_slack(api: httpx.Client, slack: Sandbox) -> None:
    admin = httpx.Client(base_url=slack.origins["slack"], trust_env=False)
    admin.post(
        "/_sandbox/faults",
        json={"kind": "error", "status": 429, "retry_after": 12, "path": "/api/chat.postMessage"},
    ).raise_for_status()
    refused = api.post(
        "chat.postMessage", json={"channel": "#eng-standup", "text": "x"}, headers=AUTH
    )
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "12"
    assert refused.json() == {"ok": False, "error": "ratelimited"}


def test_snapshot_lists_messages_with_channel_and_metadata(
    api: httpx.Client, slack: Sandbox
) -> None:
    call(
        api,
        "chat.postMessage",
        channel="#sales-meetings",
        text="hi",
        metadata=RECAP_META,
        blocks=json.dumps([{"type": "divider"}]),
    )
    state = httpx.get(slack.origins["slack"] + "/_sandbox/state", trust_env=False).json()
    (message,) = state["messages"]
    assert message["channel_name"] == "sales-meetings"
    assert message["metadata"] == RECAP_META and message["blocks"] == [{"type": "divider"}]


def test_workspace_tier_limits_posts_across_channels() -> None:
    # Given a workspace allowing a burst of 2 posts, whatever the channel
    options = {"slack": {"workspace_rate": 0.01, "workspace_burst": 2}}
    with (
        Sandbox(only=["slack"], options=options) as running,
        httpx.Client(base_url=running.urls["slack"], trust_env=False) as api,
    ):
        # When three channels get one post each
        first = call(api, "chat.postMessage", channel="#eng-standup", text="a")
        second = call(api, "chat.postMessage", channel="#sales-meetings", text="b")
        third = api.post(
            "chat.postMessage", json={"channel": "#customer-escalations", "text": "c"}, headers=AUTH
        )
    # Expect the third refused by the workspace limit
    assert first["ok"] and second["ok"]
    assert third.status_code == 429 and int(third.headers["Retry-After"]) >= 1


def test_history_cursor_is_stable_when_posts_arrive_between_pages(api: httpx.Client) -> None:
    for n in range(2):
        call(api, "chat.postMessage", channel="#sales-meetings", text=f"m{n}")
    first = call(api, "conversations.history", channel="#sales-meetings", limit=1)
    call(api, "chat.postMessage", channel="#sales-meetings", text="late")
    cursor = first["response_metadata"]["next_cursor"]
    second = call(api, "conversations.history", channel="#sales-meetings", limit=1, cursor=cursor)
    assert [m["text"] for m in first["messages"]] == ["m1"]
    assert [m["text"] for m in second["messages"]] == ["m0"]
