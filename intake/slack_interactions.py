"""POST /v1/slack/interactions: Slack's block actions and view submissions for review.

Verification first, as its own early return (slack-bolt's request verification): Slack's
`X-Slack-Signature` over `v0:<timestamp>:<body>` with the app's signing secret, and a
timestamp within five minutes, through slack-sdk's `SignatureVerifier`; anything else is a
401 and nothing happens. Then the decision (`admin.review`), which is one conditional
update, so Slack's retries (`X-Slack-Retry-Num`), double clicks and two approvers at once
come to one decision; the pushes it releases are enqueued, and the answer goes back at once.
What Slack must hear after the answer (an ephemeral explanation through `response_url`,
the Edit modal through `views.open`) runs as a background task once the 200 is sent.

A view submission is answered in the HTTP response: `{"response_action": "errors"}` with
each refused value under its field, or `{"response_action": "clear"}`.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from slack_sdk.signature import SignatureVerifier

from admin import ratings, review
from admin.review import Decided, ReviewEnqueuer, Reviewer
from intake.webhooks import BodyTooLarge, read_limited
from meetsync.settings import Settings

router = APIRouter()

MAX_BODY = 1_000_000
APPROVE, EDIT, SKIP, APPROVE_ALL = (
    "review:approve",
    "review:edit",
    "review:skip",
    "review:approve_all",
)
CLARIFY = "review:clarify"
RATE = "review:rate:"  # review:rate:up, review:rate:down, review:rate:item
EDIT_CALLBACK = "review:edit"
UNKNOWN = "That button is not one meetsync knows; nothing was done."


def verified(settings: Settings, body: bytes, timestamp: str | None, signature: str | None) -> bool:
    """Whether Slack signed this body recently with the app's signing secret."""
    verifier = SignatureVerifier(settings.slack_signing_secret.get_secret_value())
    try:
        return verifier.is_valid(body, timestamp, signature)
    except ValueError:  # a timestamp that is not a number
        return False


@router.post(
    "/v1/slack/interactions",
    summary="Slack interactivity: review buttons and the Edit modal",
    responses={401: {"description": "missing, bad or stale Slack signature"}},
)
async def interactions(request: Request, background: BackgroundTasks) -> Response:
    settings: Settings = request.app.state.settings
    try:
        body = await read_limited(request, MAX_BODY)
    except BodyTooLarge:
        return JSONResponse({"error": "body_too_large"}, status_code=413)
    if not verified(
        settings,
        body,
        request.headers.get("x-slack-request-timestamp"),
        request.headers.get("x-slack-signature"),
    ):
        return JSONResponse({"error": "invalid_signature"}, status_code=401)
    try:
        payload = json.loads(parse_qs(body.decode())["payload"][0])
    except (KeyError, IndexError, ValueError, UnicodeDecodeError):
        return JSONResponse({"error": "no payload"}, status_code=400)
    pipeline: ReviewEnqueuer = request.app.state.pipeline
    kind = payload.get("type")
    if kind == "block_actions":
        return await run_in_threadpool(_block_actions, settings, pipeline, payload, background)
    if kind == "view_submission":
        return await run_in_threadpool(_view_submission, settings, pipeline, payload)
    return Response(status_code=200)  # view_closed, shortcuts: nothing to do


def _block_actions(
    settings: Settings,
    pipeline: ReviewEnqueuer,
    payload: dict[str, Any],
    background: BackgroundTasks,
) -> Response:
    actions = payload.get("actions") or [{}]
    action = actions[0]
    action_id = str(action.get("action_id") or "")
    value = str(action.get("value") or (action.get("selected_option") or {}).get("value") or "")
    who = Reviewer(slack_id=str((payload.get("user") or {}).get("id") or "") or None)
    response_url = payload.get("response_url")
    if who.slack_id is None:
        return Response(status_code=200)
    decided: Decided
    if action_id in (APPROVE, SKIP):
        decided = review.decide(settings, value, "approve" if action_id == APPROVE else "skip", who)
    elif action_id == APPROVE_ALL:
        decided = review.approve_all(settings, value, who)
    elif action_id == CLARIFY:
        request_id, _, chosen = value.partition("|")
        decided = review.answer(settings, request_id, chosen, who)
    elif action_id.startswith(RATE):
        decided = ratings.rate_recap(settings, value, who)
        background.add_task(review.explain, response_url, decided.message)
        return Response(status_code=200)
    elif action_id == EDIT:
        trigger = str(payload.get("trigger_id") or "")
        background.add_task(_open_edit, settings, value, trigger, who, response_url)
        return Response(status_code=200)
    else:
        decided = Decided(False, UNKNOWN)
    review.follow_up(pipeline, decided)
    if not decided.ok:
        background.add_task(review.explain, response_url, decided.message)
    return Response(status_code=200)


def _open_edit(
    settings: Settings, request_id: str, trigger_id: str, who: Reviewer, response_url: str | None
) -> None:
    opened = review.open_edit(settings, request_id, trigger_id, who)
    if not opened.ok:
        review.explain(response_url, opened.message)


def _view_submission(
    settings: Settings, pipeline: ReviewEnqueuer, payload: dict[str, Any]
) -> Response:
    view = payload.get("view") or {}
    if view.get("callback_id") != EDIT_CALLBACK:
        return JSONResponse({"response_action": "clear"})
    who = Reviewer(slack_id=str((payload.get("user") or {}).get("id") or "") or None)
    decided = review.submit_edit(settings, view, who)
    review.follow_up(pipeline, decided)
    if decided.ok:
        return JSONResponse({"response_action": "clear"})
    return JSONResponse({"response_action": "errors", "errors": decided.errors})
