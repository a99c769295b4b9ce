"""The Slack emulator plays Slack's part in interactivity, with Slack's rules.

A receiving app here verifies each payload with slack-sdk's SignatureVerifier, as a real
Slack app does, and opens modals with the trigger ids it is given.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from intake.serving import BackgroundServer
from sandbox.server import Sandbox
from sandbox.slack import TOKEN
from sandbox.slack.interactions import SIGNING_SECRET

AUTH = {"Authorization": f"Bearer {TOKEN}"}
BUTTONS = [
    {
        "type": "actions",
        "block_id": "b1",
        "elements": [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Approve"},
                "action_id": "approve",
                "value": "r1",
            }
        ],
    }
]
MODAL = {
    "type": "modal",
    "callback_id": "edit",
    "title": {"type": "plain_text", "text": "Edit"},
    "submit": {"type": "plain_text", "text": "Save"},
    "blocks": [
        {
            "type": "input",
            "block_id": "field:NextStep",
            "label": {"type": "plain_text", "text": "NextStep"},
            "element": {"type": "plain_text_input", "action_id": "value", "initial_value": "Demo"},
        }
    ],
}


class Receiver:
    """A Slack app's request URL: verifies, records, answers view submissions."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.verified: list[bool] = []
        self.answer: dict[str, Any] | None = None
        verifier = SignatureVerifier(SIGNING_SECRET)

        async def receive(request: Request) -> Response:
            body = await request.body()
            self.verified.append(verifier.is_valid_request(body, dict(request.headers)))
            self.received.append(json.loads(parse_qs(body.decode())["payload"][0]))
            if self.answer is not None:
                return JSONResponse(self.answer)
            return Response(status_code=200)

        self.app = Starlette(routes=[Route("/slack", receive, methods=["POST"])])


@pytest.fixture
def wired(sandbox: Sandbox) -> Iterator[tuple[httpx.Client, Receiver]]:
    sandbox.reset()
    receiver = Receiver()
    server = BackgroundServer(receiver.app).start()
    with httpx.Client(base_url=sandbox.origins["slack"], trust_env=False, timeout=10) as slack:
        slack.put("/_sandbox/interactivity", json={"request_url": f"{server.url}/slack"})
        yield slack, receiver
    server.stop()


def call(slack: httpx.Client, method: str, **args: Any) -> dict[str, Any]:
    answer: dict[str, Any] = slack.post(f"/api/{method}", json=args, headers=AUTH).json()
    return answer


def posted(slack: httpx.Client) -> dict[str, Any]:
    return call(slack, "chat.postMessage", channel="#sales-meetings", text="x", blocks=BUTTONS)


def click(slack: httpx.Client, message: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = {"channel": message["channel"], "ts": message["ts"], "action_id": "approve"}
    answer: dict[str, Any] = slack.post(
        "/_sandbox/click", json={**body, "user": "dana@acme.io", **extra}
    ).json()
    return answer


def test_a_click_is_a_signed_block_actions_payload_and_a_retry_says_so(
    wired: tuple[httpx.Client, Receiver],
) -> None:
    slack, receiver = wired
    clicked = click(slack, posted(slack), retries=1)
    assert clicked["status"] == 200 and len(clicked["answers"]) == 2
    assert receiver.verified == [True, True]
    payload = receiver.received[0]
    assert payload["type"] == "block_actions"
    assert payload["user"]["id"] == "U0SBX0001"
    assert payload["actions"][0] | {"action_ts": ""} == {
        "action_id": "approve",
        "block_id": "b1",
        "text": {"type": "plain_text", "text": "Approve"},
        "value": "r1",
        "type": "button",
        "action_ts": "",
    }
    assert payload["trigger_id"] and payload["response_url"].startswith("http://")
    assert receiver.received[1] == payload  # Slack's retry: the same payload again


def test_a_trigger_id_opens_one_modal_within_three_seconds(
    wired: tuple[httpx.Client, Receiver],
) -> None:
    slack, _ = wired
    message = posted(slack)
    trigger = click(slack, message)["trigger_id"]
    opened = call(slack, "views.open", trigger_id=trigger, view=MODAL)
    assert opened["ok"] and opened["view"]["id"].startswith("V")
    assert call(slack, "views.open", trigger_id=trigger, view=MODAL)["error"] == (
        "exchanged_trigger_id"
    )
    assert call(slack, "views.open", trigger_id="nope", view=MODAL)["error"] == (
        "invalid_trigger_id"
    )
    late = click(slack, message)["trigger_id"]
    time.sleep(3.1)
    assert call(slack, "views.open", trigger_id=late, view=MODAL)["error"] == "expired_trigger_id"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"title": {"type": "plain_text", "text": "x" * 25}}, "title", id="title"),
        pytest.param({"submit": None}, "submit", id="inputs-without-submit"),
        pytest.param({"blocks": [{"type": "divider"}] * 101}, "blocks", id="too-many-blocks"),
        pytest.param({"private_metadata": "m" * 3001}, "private_metadata", id="metadata"),
    ],
)
def test_views_are_checked_as_slack_checks_them(
    wired: tuple[httpx.Client, Receiver], change: dict[str, Any], message: str
) -> None:
    slack, _ = wired
    trigger = click(slack, posted(slack))["trigger_id"]
    refused = call(slack, "views.open", trigger_id=trigger, view={**MODAL, **change})
    assert refused["error"] == "invalid_arguments"
    assert message in refused["response_metadata"]["messages"][0]


def test_a_submission_shows_errors_in_the_modal_or_closes_it(
    wired: tuple[httpx.Client, Receiver],
) -> None:
    slack, receiver = wired
    trigger = click(slack, posted(slack))["trigger_id"]
    view = call(slack, "views.open", trigger_id=trigger, view=MODAL)["view"]
    receiver.answer = {"response_action": "errors", "errors": {"field:NextStep": "too long"}}
    kept = slack.post(
        "/_sandbox/submit", json={"view_id": view["id"], "values": {"field:NextStep": "y" * 9}}
    ).json()
    assert kept["view_open"] and kept["view"]["errors"] == {"field:NextStep": "too long"}
    submitted = receiver.received[-1]
    assert submitted["type"] == "view_submission"
    assert submitted["view"]["state"]["values"]["field:NextStep"]["value"] == {
        "type": "plain_text_input",
        "value": "y" * 9,
    }
    receiver.answer = {"response_action": "clear"}
    closed = slack.post("/_sandbox/submit", json={"view_id": view["id"]}).json()
    assert not closed["view_open"]
    again = slack.post("/_sandbox/submit", json={"view_id": view["id"]})
    assert again.status_code == 400 and again.json()["error"] == "view_not_found"


def test_a_response_url_takes_five_posts(wired: tuple[httpx.Client, Receiver]) -> None:
    slack, _ = wired
    url = click(slack, posted(slack))["response_url"]
    answers = [
        httpx.post(url, json={"text": f"n{i}"}, trust_env=False).status_code for i in range(6)
    ]
    assert answers == [200] * 5 + [404]
    responses = slack.get("/_sandbox/state").json()["responses"]
    assert [r["text"] for r in responses] == [f"n{i}" for i in range(5)]
    assert all(r["response_type"] == "ephemeral" and r["user"] == "U0SBX0001" for r in responses)


def test_user_groups_list_their_members(wired: tuple[httpx.Client, Receiver]) -> None:
    slack, _ = wired
    (group,) = call(slack, "usergroups.list")["usergroups"]
    assert group["handle"] == "deal-desk"
    users = call(slack, "usergroups.users.list", usergroup=group["id"])["users"]
    assert len(users) == 2
    assert call(slack, "usergroups.users.list", usergroup="S0NOPE")["error"] == "no_such_subteam"
