"""Review in Slack, end to end: a signed webhook in, a review message out, and each decision
clicked through the Slack emulator (signed interaction payloads) before Salesforce changes.

The org's mapping holds the Opportunity update for the host's approval; everything else is
written as before.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from admin.tokens import mint_token
from intake.app import create_app
from intake.client import post_meeting
from intake.serving import BackgroundServer
from meetsync.bootstrap import seed_demo
from meetsync.db.migrate import upgrade
from meetsync.db.models import OpRecord, Rating, ReviewRequest
from meetsync.db.session import session_scope
from meetsync.models import MeetingOutput
from meetsync.samples import load_samples
from meetsync.settings import Settings, process_env
from sandbox.server import Sandbox
from sandbox.settings_for import settings_for
from sandbox.slack.interactions import sign
from tests.test_end_to_end import MEETING, provider_state
from workers.actors import declare
from workers.broker import make_broker
from workers.inprocess import InProcessWorkers
from workers.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]
ACME = ROOT / "mappings" / "examples" / "acme.yaml"
HOST = "dana@acme.io"  # the meeting's host: the approver
NOT_AN_APPROVER = "lee@acme.io"
OPPORTUNITY_PATCH = "PATCH /services/data/v62.0/sobjects/Opportunity/"


def review_mapping(
    tmp_path: Path, reviews: dict[str, dict[str, Any]], rule: str | None = None
) -> Path:
    """acme.yaml with these destinations' review policies (and the Opportunity match rule)."""
    body = yaml.safe_load(ACME.read_text())
    for dest in body["destinations"]:
        if dest["name"] in reviews:
            dest["review"] = reviews[dest["name"]]
        if dest["name"] == "opportunity-update" and rule is not None:
            dest["target"]["rule"] = rule
    path = tmp_path / "acme-review.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


@contextmanager
def embedded(settings: Settings, server: BackgroundServer) -> Iterator[None]:
    """SQLite and the in-process broker."""
    workers = InProcessWorkers(settings, threads=2)
    server.start(create_app(settings, workers.start()))
    try:
        yield
    finally:
        server.stop()
        workers.stop()


@contextmanager
def production(settings: Settings, server: BackgroundServer) -> Iterator[None]:
    """PostgreSQL, Redis and a separate `meetsync worker` process."""
    broker = make_broker(settings.broker_url)
    pipeline = declare(broker, Runtime(settings))
    broker.flush_all()
    worker = subprocess.Popen(
        [str(Path(sys.executable).parent / "meetsync"), "worker", "--processes", "1"],
        env={**os.environ, **process_env(settings), "MEETSYNC_RETRY__MIN_BACKOFF_MS": "200"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server.start(create_app(settings, pipeline))
    try:
        yield
    finally:
        server.stop()
        worker.terminate()
        _, stderr = worker.communicate(timeout=30)
        assert b"Traceback" not in stderr, stderr.decode()[-3000:]


@contextmanager
def review_stack(
    sandbox: Sandbox,
    tmp_path: Path,
    meeting: MeetingOutput = MEETING,
    reviews: dict[str, dict[str, Any]] | None = None,
    *,
    urls: tuple[str, str] | None = None,
    rule: str | None = None,
    **review: Any,
) -> Iterator[tuple[Settings, httpx.Client]]:
    """The embedded stack (or, given PostgreSQL and Redis URLs, the production one); by
    default the Opportunity update waits for the host's approval."""
    held = {"opportunity-update": {"mode": "approve", "approvers": ["host"], **review}}
    server = BackgroundServer()
    database_url, broker_url = urls or (f"sqlite:///{tmp_path}/review.db", "stub")
    settings = settings_for(
        sandbox,
        database_url=database_url,
        broker_url=broker_url,
        redis_url=broker_url.split("?")[0] if urls else "redis://127.0.0.1:6379/0",
        public_base_url=server.url,
    )
    upgrade(settings.database_url)
    with session_scope(settings.database_url) as session:
        seed_demo(
            session, settings, review_mapping(tmp_path, held if reviews is None else reviews, rule)
        )
    running = (production if urls else embedded)(settings, server)
    running.__enter__()
    slack = httpx.Client(base_url=sandbox.origins["slack"], trust_env=False, timeout=20)
    slack.put(
        "/_sandbox/interactivity", json={"request_url": f"{server.url}/v1/slack/interactions"}
    ).raise_for_status()
    try:
        with httpx.Client(base_url=server.url, trust_env=False, timeout=10) as http:
            accepted = post_meeting(http, settings.webhook_secret.get_secret_value(), meeting)
            assert accepted.status_code == 202
            yield settings, slack
    finally:
        slack.close()
        running.__exit__(None, None, None)


def eventually(check: Any, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {check.__name__}")


def review_message(slack: httpx.Client, timeout_s: float = 30.0) -> dict[str, Any]:
    """The review message (the one with review buttons or review outcomes), once posted."""

    def posted() -> dict[str, Any] | None:
        for message in slack.get("/_sandbox/state").json()["messages"]:
            if "Review what meetsync will write" in str(message.get("blocks")):
                return dict(message)
        return None

    found: dict[str, Any] = eventually(posted, timeout_s)
    return found


def buttons(message: dict[str, Any]) -> dict[str, str]:
    """action_id → value of the message's buttons."""
    return {
        e["action_id"]: e["value"]
        for b in message.get("blocks") or []
        for e in b.get("elements") or []
        if e.get("type") == "button"
    }


def click(
    slack: httpx.Client, message: dict[str, Any], action_id: str, user: str = HOST, **extra: Any
) -> dict[str, Any]:
    body = {
        "channel": message["channel"],
        "ts": message["ts"],
        "action_id": action_id,
        "user": user,
        **extra,
    }
    answer = slack.post("/_sandbox/click", json=body)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def signed_post(
    settings: Settings,
    payload: dict[str, Any],
    *,
    secret: str = "dev-slack-signing-secret",
    age_s: int = 0,
) -> httpx.Response:
    """A payload posted to the interaction endpoint the way Slack signs it."""
    body = str(httpx.QueryParams({"payload": json.dumps(payload)})).encode()
    sent_at = int(time.time()) - age_s
    return httpx.post(
        settings.public_base_url + "/v1/slack/interactions",
        content=body,
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-slack-request-timestamp": str(sent_at),
            "x-slack-signature": sign(secret, sent_at, body),
        },
        trust_env=False,
    )


def press(
    slack: httpx.Client, message: dict[str, Any], action_id: str, **extra: Any
) -> dict[str, Any]:
    """A click from a thread racing others: once the message shows the decision, the
    button is gone and Slack sends nothing (the emulator answers action_not_found)."""
    body = {"channel": message["channel"], "ts": message["ts"], "action_id": action_id}
    answer = slack.post("/_sandbox/click", json={**body, "user": HOST, **extra})
    if answer.status_code == 400 and answer.json()["error"] == "action_not_found":
        return {"answers": []}
    result: dict[str, Any] = answer.json()
    return result


def globex(sandbox: Sandbox) -> dict[str, Any]:
    records = provider_state(sandbox, "salesforce")["records"]["Opportunity"]
    return dict(next(o for o in records if o["Name"].startswith("Globex")))


def opportunity_writes(sandbox: Sandbox) -> int:
    requests = sandbox.admin("salesforce").stats()["requests"]
    return sum(n for endpoint, n in requests.items() if endpoint.startswith(OPPORTUNITY_PATCH))


def held_op(settings: Settings) -> tuple[str, str]:
    """(state of the held Opportunity op, state of its review request)."""
    with session_scope(settings.database_url) as session:
        request = session.query(ReviewRequest).one()
        row = session.get(OpRecord, request.op_key)
        assert row is not None
        return row.state, request.state


def test_a_held_change_waits_then_approve_writes_it_once(
    clean_sandbox: Sandbox, tmp_path: Path
) -> None:
    before = globex(clean_sandbox)
    with review_stack(clean_sandbox, tmp_path) as (settings, slack):
        message = review_message(slack)
        # the proposal, in front of the approver: field, current → proposed, the evidence
        shown = str(message["blocks"])
        assert "NextStep" in shown and "technical deep dive" in shown
        assert "Dana Reyes" in shown  # who said it
        assert held_op(settings) == ("awaiting_review", "pending")
        assert opportunity_writes(clean_sandbox) == 0
        assert globex(clean_sandbox)["NextStep"] == before["NextStep"]

        answer = click(slack, message, "review:approve")
        assert answer["status"] == 200 and answer["ms"] < 3000

        eventually(lambda: held_op(settings) == ("done", "approved"))
        assert "technical deep dive" in globex(clean_sandbox)["NextStep"]
        assert opportunity_writes(clean_sandbox) == 1
        # the message says who approved, and links to what was written
        updated = eventually(
            lambda: (
                "what was written" in str(review_message(slack)["blocks"]) and review_message(slack)
            )
        )
        assert "Approved" in str(updated["blocks"]) and "review:approve" not in buttons(updated)


def test_a_double_click_a_slack_retry_and_a_second_approver_make_one_write(
    clean_sandbox: Sandbox, tmp_path: Path
) -> None:
    with review_stack(clean_sandbox, tmp_path) as (settings, slack):
        message = review_message(slack)
        results: list[dict[str, Any]] = []
        clicks = [
            threading.Thread(
                target=lambda: results.append(press(slack, message, "review:approve", retries=2))
            )
            for _ in range(3)
        ]
        for t in clicks:
            t.start()
        for t in clicks:
            t.join()
        assert all(a["status"] == 200 for r in results for a in r["answers"])
        eventually(lambda: held_op(settings) == ("done", "approved"))
        time.sleep(1.0)  # room for a second write, were there one
        assert opportunity_writes(clean_sandbox) == 1
        # the clicks that came second were told so, privately
        sent = sum(len(r["answers"]) for r in results)
        responses = eventually(
            lambda: (
                (got := slack.get("/_sandbox/state").json()["responses"])
                and len(got) == sent - 1
                and got
            )
        )
        assert all(r["response_type"] == "ephemeral" for r in responses)
        assert all("Already approved" in r["text"] for r in responses)


def test_skip_writes_nothing(clean_sandbox: Sandbox, tmp_path: Path) -> None:
    before = globex(clean_sandbox)
    with review_stack(clean_sandbox, tmp_path) as (settings, slack):
        message = review_message(slack)
        click(slack, message, "review:skip")
        eventually(lambda: held_op(settings) == ("skipped", "skipped"))
        eventually(lambda: "Skipped" in str(review_message(slack)["blocks"]))
        time.sleep(0.5)
        assert opportunity_writes(clean_sandbox) == 0
        assert globex(clean_sandbox)["NextStep"] == before["NextStep"]
        # a late approval of the skipped change, through the admin API: refused, nothing written
        with session_scope(settings.database_url) as session:
            token = mint_token(session, "acme").token
            request_id = session.query(ReviewRequest).one().id
        late = httpx.post(
            f"{settings.public_base_url}/v1/admin/orgs/acme/reviews/{request_id}/approve",
            json={"by": HOST},
            headers={"Authorization": f"Bearer {token}"},
            trust_env=False,
        )
        assert late.status_code == 409 and "Already skipped" in late.json()["detail"]
        time.sleep(0.3)
        assert opportunity_writes(clean_sandbox) == 0


def test_someone_who_may_not_approve_is_told_so_and_nothing_happens(
    clean_sandbox: Sandbox, tmp_path: Path
) -> None:
    with review_stack(clean_sandbox, tmp_path) as (settings, slack):
        message = review_message(slack)
        clicked = click(slack, message, "review:approve", user=NOT_AN_APPROVER)
        texts = eventually(
            lambda: [r["text"] for r in slack.get("/_sandbox/state").json()["responses"]]
        )
        assert "Only dana@acme.io may decide" in texts[0]
        assert held_op(settings) == ("awaiting_review", "pending")
        # an unknown action and an unknown request, signed as Slack signs: explained too
        for action in (
            {"action_id": "review:frobnicate", "value": "x"},
            {"action_id": "review:approve", "value": "no-such-request"},
        ):
            payload = {
                "type": "block_actions",
                "user": {"id": "U0SBX0001"},
                "response_url": clicked["response_url"],
                "actions": [action],
            }
            assert signed_post(settings, payload).status_code == 200
        texts = eventually(
            lambda: (
                [r["text"] for r in slack.get("/_sandbox/state").json()["responses"]][2:]
                and [r["text"] for r in slack.get("/_sandbox/state").json()["responses"]]
            )
        )
        assert len(texts) == 3
        assert any("not one meetsync knows" in t for t in texts)
        assert any("That review is unknown here" in t for t in texts)
        assert held_op(settings) == ("awaiting_review", "pending")
        assert opportunity_writes(clean_sandbox) == 0


def test_edit_validates_in_the_modal_then_writes_the_edited_value_once(
    clean_sandbox: Sandbox, tmp_path: Path
) -> None:
    with review_stack(clean_sandbox, tmp_path) as (settings, slack):
        message = review_message(slack)
        click(slack, message, "review:edit")
        view = eventually(
            lambda: next(
                iter(v for v in slack.get("/_sandbox/state").json()["views"] if v["open"]), None
            )
        )
        prefilled = {b["block_id"]: b["element"].get("initial_value") for b in view["blocks"]}
        assert "technical deep dive" in prefilled["field:NextStep"]

        # a value Salesforce would refuse (NextStep holds 255 characters): an error in the
        # modal, which stays open, and nothing written
        bad = slack.post(
            "/_sandbox/submit",
            json={"view_id": view["id"], "user": HOST, "values": {"field:NextStep": "x" * 300}},
        ).json()
        assert bad["body"]["response_action"] == "errors"
        assert "255" in bad["view"]["errors"]["field:NextStep"] and bad["view_open"]
        time.sleep(0.3)
        assert held_op(settings) == ("awaiting_review", "pending")
        assert opportunity_writes(clean_sandbox) == 0

        edited = "Technical deep dive with Globex's data team on Dec 3"
        good = slack.post(
            "/_sandbox/submit",
            json={"view_id": view["id"], "user": HOST, "values": {"field:NextStep": edited}},
        ).json()
        assert good["status"] == 200 and good["body"] == {"response_action": "clear"}
        assert good["view"]["errors"] == {} and not good["view_open"]
        eventually(lambda: held_op(settings) == ("done", "edited"))
        assert globex(clean_sandbox)["NextStep"] == edited
        assert opportunity_writes(clean_sandbox) == 1
        with session_scope(settings.database_url) as session:
            request = session.query(ReviewRequest).one()
            assert request.corrections[0]["field"] == "NextStep"
            assert request.corrections[0]["after"] == edited
            assert request.corrections[0]["who"].startswith("U")
            assert request.model and request.prompt_version


def test_an_expired_request_is_recorded_as_skipped(clean_sandbox: Sandbox, tmp_path: Path) -> None:
    with review_stack(clean_sandbox, tmp_path, expire_after="1s") as (settings, slack):
        review_message(slack)
        eventually(lambda: held_op(settings) == ("skipped", "expired"))
        eventually(lambda: "Expired" in str(review_message(slack)["blocks"]))
        assert opportunity_writes(clean_sandbox) == 0


@pytest.mark.parametrize(
    ("age_s", "secret"),
    [
        pytest.param(600, "dev-slack-signing-secret", id="stale"),
        pytest.param(0, "not-the-secret", id="forged"),
    ],
)
def test_a_forged_or_stale_signature_is_refused_and_nothing_happens(
    clean_sandbox: Sandbox, tmp_path: Path, age_s: int, secret: str
) -> None:
    with review_stack(clean_sandbox, tmp_path) as (settings, slack):
        message = review_message(slack)
        payload = {
            "type": "block_actions",
            "user": {"id": "U0SBX0001"},
            "actions": [
                {"action_id": "review:approve", "value": buttons(message)["review:approve"]}
            ],
        }
        assert signed_post(settings, payload, secret=secret, age_s=age_s).status_code == 401
        time.sleep(0.3)
        assert held_op(settings) == ("awaiting_review", "pending")
        # the same payload, signed now with the app's secret, counts
        assert signed_post(settings, payload).status_code == 200
        eventually(lambda: held_op(settings) == ("done", "approved"))


AMBIGUOUS = MeetingOutput.model_validate(
    {
        "org_id": "acme",
        "meeting_id": "review-two-sams",
        "title": "Globex pricing call",
        "start": "2026-11-17T15:00:00Z",
        "end": "2026-11-17T15:30:00Z",
        "attendees": [
            {"name": "Dana Reyes", "email": "dana@acme.io", "internal": True},
            {"name": "Sam Rivera", "email": "srivera@acme.io", "internal": True},
            {"name": "Sam Patel", "email": "sam@acme.io", "internal": True},
            {"name": "Hank Scorpio", "email": "hank@globex.com", "internal": False},
        ],
        "transcript": [
            {"speaker": "Hank Scorpio", "start": 3, "text": "Can someone send us the pricing?"},
            {
                "speaker": "Dana Reyes",
                "start": 9,
                "text": "Sam will send you the pricing sheet by Friday.",
            },
        ],
        "summary": "Pricing for Globex.",
    }
)


def test_an_ambiguous_owner_is_asked_and_the_answer_assigns_the_task(
    clean_sandbox: Sandbox, tmp_path: Path
) -> None:
    reviews = {
        "customer-followups": {"mode": "auto", "ambiguous_owner": "ask", "approvers": ["host"]}
    }
    with review_stack(clean_sandbox, tmp_path, AMBIGUOUS, reviews) as (settings, slack):
        message = review_message(slack)
        select = next(
            e
            for b in message["blocks"]
            for e in b.get("elements") or []
            if e.get("action_id") == "review:clarify"
        )
        labels = [o["text"]["text"] for o in select["options"]]
        assert labels == ["Sam Rivera (srivera@acme.io)", "Sam Patel (sam@acme.io)"]
        assert provider_state(clean_sandbox, "asana")["tasks"] == []  # the task waits
        patel = next(o["value"] for o in select["options"] if "sam@acme.io" in o["value"])
        click(slack, message, "review:clarify", option=patel)

        tasks = eventually(lambda: provider_state(clean_sandbox, "asana")["tasks"])
        assert len(tasks) == 1 and tasks[0]["assignee"]["name"] == "Sam Patel"
        eventually(lambda: "Answered" in str(review_message(slack)["blocks"]))
        with session_scope(settings.database_url) as session:
            request = session.query(ReviewRequest).one()
            assert request.kind == "clarify" and request.state == "edited"
            assert request.corrections[0]["before"] == "srivera@acme.io"  # the model's guess
            assert request.corrections[0]["after"] == "sam@acme.io"


def test_a_recap_is_rated_and_so_are_its_items_with_the_model_that_made_them(
    clean_sandbox: Sandbox, tmp_path: Path
) -> None:
    with review_stack(clean_sandbox, tmp_path) as (settings, slack):

        def recap() -> dict[str, Any] | None:
            for message in slack.get("/_sandbox/state").json()["messages"]:
                if "review:rate:up" in str(message.get("blocks")):
                    return dict(message)
            return None

        message = eventually(recap)
        select = next(
            e
            for b in message["blocks"]
            for e in b.get("elements") or []
            if e.get("action_id") == "review:rate:item"
        )
        click(slack, message, "review:rate:up")
        click(slack, message, "review:rate:down")  # a change of mind: the last one counts
        down_first_item = next(
            o["value"] for o in select["options"] if o["value"].endswith("|0|down")
        )
        click(slack, message, "review:rate:item", user="sam@acme.io", option=down_first_item)
        eventually(lambda: len(slack.get("/_sandbox/state").json()["responses"]) == 3)
        with session_scope(settings.database_url) as session:
            ratings = {
                (r.item_key == "", r.rated_by, r.value, r.model, r.prompt_version)
                for r in session.query(Rating)
            }
            item = session.query(Rating).filter(Rating.item_key != "").one()
            asana = session.get(OpRecord, item.item_key)
        assert ratings == {
            (True, "U0SBX0001", "down", "gpt-4o-mini", "v1"),
            (False, "U0SBX0002", "down", "gpt-4o-mini", "v1"),
        }
        assert asana is not None and asana.connector == "asana"  # the item's own task op


@pytest.mark.parametrize(
    ("approvers", "allowed", "refused"),
    [
        pytest.param(["record_owner"], "dana@acme.io", "sam@acme.io", id="record-owner"),
        pytest.param(["@deal-desk"], "priya@acme.io", "dana@acme.io", id="user-group"),
        pytest.param(["lee@acme.io"], "lee@acme.io", "dana@acme.io", id="named"),
    ],
)
def test_only_the_approvers_the_mapping_names_may_decide(
    clean_sandbox: Sandbox, tmp_path: Path, approvers: list[str], allowed: str, refused: str
) -> None:
    review = {"approvers": approvers, "post_to": "#sales-meetings"}
    with review_stack(clean_sandbox, tmp_path, **review) as (settings, slack):
        message = review_message(slack)
        assert message["channel_name"] == "sales-meetings"
        click(slack, message, "review:approve", user=refused)
        eventually(lambda: slack.get("/_sandbox/state").json()["responses"])
        assert held_op(settings) == ("awaiting_review", "pending")
        click(slack, message, "review:approve", user=allowed)
        eventually(lambda: held_op(settings) == ("done", "approved"))
        assert opportunity_writes(clean_sandbox) == 1
        updated = eventually(
            lambda: (m := review_message(slack)) and "what was written" in str(m["blocks"]) and m
        )
        assert updated["ts"] == message["ts"]  # the same message, edited in place


def test_a_reminder_comes_in_the_thread_before_the_request_expires(
    clean_sandbox: Sandbox, tmp_path: Path
) -> None:
    with review_stack(clean_sandbox, tmp_path, remind_after="1s", expire_after="3s") as (
        settings,
        slack,
    ):
        message = review_message(slack)

        def reminder() -> dict[str, Any] | None:
            for m in slack.get("/_sandbox/state").json()["messages"]:
                if "still wait for review" in str(m.get("text")):
                    return dict(m)
            return None

        nudge = eventually(reminder)
        assert "<@U0SBX0001>" in nudge["text"]  # the host, mentioned
        assert held_op(settings) == ("awaiting_review", "pending")
        eventually(lambda: held_op(settings) == ("skipped", "expired"))
        del message


def test_the_admin_api_lists_and_decides_the_same_requests(
    clean_sandbox: Sandbox, tmp_path: Path
) -> None:
    with review_stack(clean_sandbox, tmp_path) as (settings, slack):
        review_message(slack)
        with session_scope(settings.database_url) as session:
            token = mint_token(session, "acme").token
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=settings.public_base_url, trust_env=False) as api:
            (pending,) = api.get("/v1/admin/orgs/acme/reviews", headers=auth).json()
            assert pending["fields"][0]["name"] == "NextStep"
            assert pending["evidence"]["speaker"] == "Dana Reyes"
            url = f"/v1/admin/orgs/acme/reviews/{pending['id']}"
            refused = api.post(
                f"{url}/edit", json={"by": HOST, "fields": {"NextStep": "x" * 300}}, headers=auth
            )
            assert refused.status_code == 422
            assert "255" in refused.json()["detail"]["errors"]["field:NextStep"]
            edited = api.post(
                f"{url}/edit", json={"by": HOST, "fields": {"NextStep": "Deep dive"}}, headers=auth
            )
            assert edited.status_code == 200, edited.text
            assert api.post(f"{url}/approve", json={}, headers=auth).status_code == 409
            assert api.get("/v1/admin/orgs/acme/reviews", headers=auth).json() == []
        eventually(lambda: held_op(settings) == ("done", "edited"))
        assert globex(clean_sandbox)["NextStep"] == "Deep dive"
        assert opportunity_writes(clean_sandbox) == 1


@pytest.mark.integration
def test_on_postgres_redis_and_a_worker_process_a_double_click_writes_once(
    clean_sandbox: Sandbox, tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    broker_url = f"{redis_url}?namespace=review-{uuid.uuid4().hex[:8]}"
    with review_stack(clean_sandbox, tmp_path, urls=(postgres_url, broker_url)) as (
        settings,
        slack,
    ):
        message = review_message(slack, timeout_s=90)
        results: list[dict[str, Any]] = []
        clicks = [
            threading.Thread(
                target=lambda: results.append(press(slack, message, "review:approve", retries=1))
            )
            for _ in range(3)
        ]
        for t in clicks:
            t.start()
        for t in clicks:
            t.join()
        assert all(a["status"] == 200 for r in results for a in r["answers"])
        eventually(lambda: held_op(settings) == ("done", "approved"), timeout_s=60)
        eventually(lambda: "what was written" in str(review_message(slack)["blocks"]))
        assert opportunity_writes(clean_sandbox) == 1
        responses = slack.get("/_sandbox/state").json()["responses"]
        sent = sum(len(r["answers"]) for r in results)
        responses = eventually(
            lambda: (
                (got := slack.get("/_sandbox/state").json()["responses"])
                and len(got) == sent - 1
                and got
            )
        )
        assert all("Already approved" in r["text"] for r in responses)


def test_a_write_lost_after_the_decision_lands_once(clean_sandbox: Sandbox, tmp_path: Path) -> None:
    # the approved write reaches Salesforce but its answer never comes back (a worker that
    # died mid-write looks the same): the next attempt finds it instead of writing again
    with review_stack(clean_sandbox, tmp_path) as (settings, slack):
        message = review_message(slack)
        clean_sandbox.admin("salesforce").arm(
            "lost_response", method="PATCH", path="/services/data/v62.0/sobjects/Opportunity/"
        )
        click(slack, message, "review:approve")
        eventually(lambda: held_op(settings) == ("done", "approved"), timeout_s=60)
        assert "technical deep dive" in globex(clean_sandbox)["NextStep"]
        assert opportunity_writes(clean_sandbox) == 1


def test_a_second_delivery_after_an_edit_keeps_the_edit_and_writes_nothing(
    clean_sandbox: Sandbox, tmp_path: Path
) -> None:
    with review_stack(clean_sandbox, tmp_path) as (settings, slack):
        review_message(slack)
        with session_scope(settings.database_url) as session:
            token = mint_token(session, "acme").token
            request_id = session.query(ReviewRequest).one().id
        with httpx.Client(base_url=settings.public_base_url, trust_env=False) as api:
            edited = api.post(
                f"/v1/admin/orgs/acme/reviews/{request_id}/edit",
                json={"fields": {"NextStep": "Deep dive on Dec 3"}},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert edited.status_code == 200
            eventually(lambda: held_op(settings) == ("done", "edited"))
            again = post_meeting(api, settings.webhook_secret.get_secret_value(), MEETING)
            assert again.status_code == 202
            time.sleep(3)  # the re-run plans the extracted value again
        assert held_op(settings) == ("done", "edited")
        assert globex(clean_sandbox)["NextStep"] == "Deep dive on Dec 3"
        assert opportunity_writes(clean_sandbox) == 1
        with session_scope(settings.database_url) as session:
            assert session.query(ReviewRequest).count() == 1  # nobody is asked twice


def test_approve_all_releases_every_change_of_the_meeting_once(
    clean_sandbox: Sandbox, tmp_path: Path
) -> None:
    reviews = {
        "customer-followups": {"approvers": ["host"]},
        "opportunity-update": {"approvers": ["host"]},
    }
    with review_stack(clean_sandbox, tmp_path, MEETING, reviews) as (settings, slack):
        message = eventually(
            lambda: (m := review_message(slack)) and "review:approve_all" in str(m["blocks"]) and m
        )
        assert str(message["blocks"]).count("review:skip") == 3  # two tasks, one opportunity
        assert provider_state(clean_sandbox, "asana")["tasks"] == []
        # the click and Slack's retry of it: the same payload twice
        click(slack, message, "review:approve_all", retries=1)
        tasks = eventually(
            lambda: (
                len(provider_state(clean_sandbox, "asana")["tasks"]) == 2
                and provider_state(clean_sandbox, "asana")["tasks"]
            )
        )
        eventually(lambda: "technical deep dive" in (globex(clean_sandbox)["NextStep"] or ""))
        time.sleep(0.5)
        assert len(provider_state(clean_sandbox, "asana")["tasks"]) == len(tasks) == 2
        assert opportunity_writes(clean_sandbox) == 1
        with session_scope(settings.database_url) as session:
            states = {r.state for r in session.query(ReviewRequest)}
        assert states == {"approved"}


def test_when_several_opportunities_match_and_the_rule_says_ask_the_answer_picks_one(
    clean_sandbox: Sandbox, tmp_path: Path
) -> None:
    renewal = next(m for m in load_samples() if "renewal" in m.title.lower())
    records = provider_state(clean_sandbox, "salesforce")["records"]["Opportunity"]
    before = {o["Name"]: o for o in records if o["Name"].startswith("Initech")}
    assert len(before) == 2  # the renewal and the expansion, both open
    # no review policy: `rule: ask` alone asks the host which one
    with review_stack(clean_sandbox, tmp_path, renewal, {}, rule="ask") as (_, slack):
        message = review_message(slack)
        select = next(
            e
            for b in message["blocks"]
            for e in b.get("elements") or []
            if e.get("action_id") == "review:clarify"
        )
        labels = [o["text"]["text"] for o in select["options"]]
        assert [label.split(" (")[0] for label in labels] == [
            "Initech - Renewal 2027",
            "Initech - Expansion",
        ]
        assert opportunity_writes(clean_sandbox) == 0
        expansion = next(o["value"] for o in select["options"] if "Expansion" in o["text"]["text"])
        click(slack, message, "review:clarify", option=expansion)
        eventually(lambda: opportunity_writes(clean_sandbox) == 1)
        eventually(lambda: "Answered" in str(review_message(slack)["blocks"]))
    after = {
        o["Name"]: o
        for o in provider_state(clean_sandbox, "salesforce")["records"]["Opportunity"]
        if o["Name"].startswith("Initech")
    }
    assert after["Initech - Renewal 2027"] == before["Initech - Renewal 2027"]
    assert after["Initech - Expansion"] != before["Initech - Expansion"]


def test_a_review_message_whose_post_was_lost_is_found_not_posted_twice(
    clean_sandbox: Sandbox, tmp_path: Path
) -> None:
    # every chat.postMessage answer is lost twice (the recap's and the review's posts land,
    # their answers do not): each is found by its metadata on the next attempt
    clean_sandbox.admin("slack").arm(
        "lost_response", method="POST", path="/api/chat.postMessage", times=2
    )
    with review_stack(clean_sandbox, tmp_path) as (settings, slack):
        message = review_message(slack, timeout_s=60)
        click(slack, message, "review:approve")
        eventually(lambda: held_op(settings) == ("done", "approved"))
        eventually(lambda: "what was written" in str(review_message(slack)["blocks"]))
        messages = slack.get("/_sandbox/state").json()["messages"]
    reviews = [m for m in messages if "Review what meetsync" in str(m.get("blocks"))]
    assert len(reviews) == 1 and reviews[0]["ts"] == message["ts"]


def test_an_edit_that_respells_a_word_teaches_memory_the_term(
    clean_sandbox: Sandbox, tmp_path: Path
) -> None:
    with review_stack(clean_sandbox, tmp_path) as (settings, slack):
        review_message(slack)
        with session_scope(settings.database_url) as session:
            token = mint_token(session, "acme").token
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=settings.public_base_url, trust_env=False) as api:
            (pending,) = api.get("/v1/admin/orgs/acme/reviews", headers=auth).json()
            proposed = pending["fields"][0]["proposed"].split()
            heard = proposed[1].strip(".,;:!?")
            proposed[1] = "Kubernetes"
            url = f"/v1/admin/orgs/acme/reviews/{pending['id']}/edit"
            edited = api.post(
                url, json={"by": HOST, "fields": {"NextStep": " ".join(proposed)}}, headers=auth
            )
            assert edited.status_code == 200, edited.text
            (term,) = api.get("/v1/admin/orgs/acme/memory?kind=term", headers=auth).json()
        assert term["name"] == "Kubernetes" and term["data"]["aliases"] == [heard]
        (lesson,) = term["learned"]
        assert lesson["review_request_id"] == pending["id"]
        assert lesson["meeting_id"] == pending["meeting_id"] and lesson["decided_by"] == HOST
        eventually(lambda: held_op(settings) == ("done", "edited"))
