"""Slack's part in interactivity: signed payloads to the app, modals, response URLs.

A test or the demo "clicks" through the inspection API; the emulator then does what Slack
does: builds the `block_actions` (or `view_submission`) payload, signs it with the app's
signing secret (`v0=` HMAC-SHA256 of `v0:<ts>:<body>`, headers `X-Slack-Request-Timestamp`
and `X-Slack-Signature`), POSTs it form-encoded (`payload=<json>`) to the request URL and
notes how the app answered (Slack shows the user an error after 3 s).

    PUT  /_sandbox/interactivity  {"request_url", "signing_secret"?}   where to send payloads
    POST /_sandbox/click   {"channel", "ts", "action_id", "value"?, "option"?, "user",
                            "retries"?: n}   press a button (or pick an option) in a message;
                            `retries` sends the same payload again as Slack's retries do
    POST /_sandbox/submit  {"view_id", "user", "values": {block_id: value}}  submit a modal

Methods: `views.open` (a trigger id is single-use and lives 3 s: `expired_trigger_id`,
`invalid_trigger_id`, `exchanged_trigger_id`), `views.update` (`hash_conflict`,
`not_found`), `chat.postEphemeral`, `usergroups.list`, `usergroups.users.list`. A view is
checked as Slack does (a title of at most 24 characters, at most 100 blocks, submit text
when it has inputs, private_metadata ≤ 3000 characters, callback_id ≤ 255). A
`response_url` (`/actions/<team>/<n>/<secret>`) takes 5 posts within 30 minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from sandbox.slack.errors import _SlackError
from sandbox.slack.store import SlackStore
from sandbox.slack.team import APP_ID, BOT_ID, TEAM_ID

SIGNING_SECRET = "dev-slack-signing-secret"
TRIGGER_TTL_S = 3.0
ANSWER_WITHIN_S = 3.0
RESPONSE_URL_USES = 5
RESPONSE_URL_TTL_S = 30 * 60
MAX_VIEW_BLOCKS = 100
MAX_TITLE = 24
MAX_METADATA = 3000
_ids = itertools.count(1)
# the workspace's user groups when the world names none: a deal desk of two
DEFAULT_GROUPS = [{"handle": "deal-desk", "emails": ["priya@acme.io", "lee@acme.io"]}]


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Slack's `X-Slack-Signature` for a body sent at `timestamp`."""
    base = f"v0:{timestamp}:".encode() + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class SlackInteractions(SlackStore):
    """Interactivity state on top of the workspace: triggers, views, response URLs."""

    def seed(self) -> None:
        super().seed()
        self.request_url: str | None = self.options.get("request_url")
        self.signing_secret: str = self.options.get("signing_secret", SIGNING_SECRET)
        self.triggers: dict[str, dict[str, Any]] = {}  # id → {user, at, used}
        self.views: dict[str, dict[str, Any]] = {}
        self.response_urls: dict[str, dict[str, Any]] = {}  # secret → {channel, ts, uses, at}
        self.responses: list[dict[str, Any]] = []  # what apps posted to response URLs
        self.ephemerals: list[dict[str, Any]] = []
        self.interactions: list[dict[str, Any]] = []  # what was sent and how the app answered
        self.usergroups: dict[str, dict[str, Any]] = {}
        groups = self.world.get("slack_usergroups", DEFAULT_GROUPS)
        for i, group in enumerate(groups, start=1):
            gid = f"S0SBX{i:04d}"
            members = [
                self.by_email[e.lower()] for e in group["emails"] if e.lower() in self.by_email
            ]
            self.usergroups[gid] = {"id": gid, "handle": group["handle"], "users": members}

    def interaction_snapshot(self) -> dict[str, Any]:
        return {
            "views": [dict(v) for v in self.views.values()],
            "responses": list(self.responses),
            "ephemerals": list(self.ephemerals),
            "interactions": list(self.interactions),
        }

    # -- Web API methods ---------------------------------------------------------------
    def interaction_methods(self) -> dict[str, Any]:
        return {
            "views.open": self._views_open,
            "views.update": self._views_update,
            "chat.postEphemeral": self._post_ephemeral,
            "usergroups.list": self._usergroups_list,
            "usergroups.users.list": self._usergroup_users,
        }

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        trigger = self.triggers.get(str(args.get("trigger_id") or ""))
        if trigger is None:
            raise _SlackError("invalid_trigger_id")
        if trigger["used"]:
            raise _SlackError("exchanged_trigger_id")
        if time.time() - trigger["at"] > TRIGGER_TTL_S:
            raise _SlackError("expired_trigger_id")
        view = _view_arg(args.get("view"))
        trigger["used"] = True
        vid = f"V0SBX{next(_ids):06d}"
        opened = {
            **view,
            "id": vid,
            "team_id": TEAM_ID,
            "app_id": APP_ID,
            "bot_id": BOT_ID,
            "user": trigger["user"],
            "hash": secrets.token_hex(8),
            "root_view_id": vid,
            "state": {"values": {}},
            "open": True,
            "errors": {},
        }
        self.views[vid] = opened
        return {"view": _public_view(opened)}

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        vid = str(args.get("view_id") or "")
        current = self.views.get(vid)
        if current is None:
            raise _SlackError("not_found")
        if args.get("hash") and args["hash"] != current["hash"]:
            raise _SlackError("hash_conflict")
        view = _view_arg(args.get("view"))
        current.update(view, hash=secrets.token_hex(8))
        return {"view": _public_view(current)}

    def _post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        user = str(args.get("user") or "")
        if user not in self.users:
            raise _SlackError("user_not_found")
        self.ephemerals.append({"channel": channel["id"], "user": user, "text": args.get("text")})
        return {"message_ts": self._next_ts()}

    def _usergroups_list(self, _: dict[str, Any]) -> dict[str, Any]:
        return {
            "usergroups": [
                {"id": g["id"], "handle": g["handle"], "user_count": len(g["users"])}
                for g in self.usergroups.values()
            ]
        }

    def _usergroup_users(self, args: dict[str, Any]) -> dict[str, Any]:
        group = self.usergroups.get(str(args.get("usergroup") or ""))
        if group is None:
            raise _SlackError("no_such_subteam")
        return {"users": list(group["users"])}

    # -- routes: the inspection API and response URLs -----------------------------------
    def interaction_routes(self) -> list[BaseRoute]:
        async def configure(request: Request) -> JSONResponse:
            body = await request.json()
            with self.lock:
                self.request_url = body.get("request_url")
                self.signing_secret = body.get("signing_secret") or self.signing_secret
            return JSONResponse({"ok": True, "request_url": self.request_url})

        async def click(request: Request) -> JSONResponse:
            body = await request.json()
            base = str(request.base_url).rstrip("/")
            try:
                with self.lock:
                    payload = self._click_payload(body, base)
            except _SlackError as exc:
                return JSONResponse({"ok": False, "error": exc.error}, status_code=400)
            return JSONResponse(await self._send(payload, int(body.get("retries") or 0)))

        async def submit(request: Request) -> JSONResponse:
            body = await request.json()
            try:
                with self.lock:
                    payload = self._submit_payload(body)
            except _SlackError as exc:
                return JSONResponse({"ok": False, "error": exc.error}, status_code=400)
            sent = await self._send(payload, 0)
            with self.lock:
                view = self.views[payload["view"]["id"]]
                raw = sent.get("body")
                answer: dict[str, Any] = raw if isinstance(raw, dict) else {}
                action = answer.get("response_action")
                if sent["status"] == 200 and action == "errors":
                    view["errors"] = dict(answer.get("errors") or {})
                elif sent["status"] == 200 and action == "update":
                    view.update(_view_arg(answer.get("view")), errors={})
                elif sent["status"] == 200:
                    view["open"], view["errors"] = False, {}
                sent["view"], sent["view_open"] = _public_view(view), view["open"]
            return JSONResponse(sent)

        async def respond(request: Request) -> JSONResponse:
            secret = request.path_params["secret"]
            body = await request.json()
            with self.lock:
                url = self.response_urls.get(secret)
                if url is None:
                    return JSONResponse({"ok": False, "error": "invalid_url"}, status_code=404)
                if time.time() - url["at"] > RESPONSE_URL_TTL_S:
                    return JSONResponse({"ok": False, "error": "expired_url"}, status_code=404)
                if url["uses"] >= RESPONSE_URL_USES:
                    return JSONResponse({"ok": False, "error": "used_url"}, status_code=404)
                url["uses"] += 1
                self.responses.append(
                    {
                        "channel": url["channel"],
                        "ts": url["ts"],
                        "user": url["user"],
                        "response_type": body.get("response_type", "ephemeral"),
                        "text": body.get("text"),
                        "replace_original": bool(body.get("replace_original")),
                    }
                )
            return JSONResponse({"ok": True})

        return [
            Route("/_sandbox/interactivity", configure, methods=["PUT"]),
            Route("/_sandbox/click", click, methods=["POST"]),
            Route("/_sandbox/submit", submit, methods=["POST"]),
            Route("/actions/{team}/{n}/{secret}", respond, methods=["POST"]),
        ]

    # -- building payloads -----------------------------------------------------------
    def _user_ref(self, ref: Any) -> dict[str, Any]:
        ref = str(ref or "")
        uid = ref if ref in self.users else self.by_email.get(ref.lower())
        if uid is None:
            raise _SlackError("user_not_found")
        user = self.users[uid]
        return {
            "id": uid,
            "username": user.get("name"),
            "name": user.get("name"),
            "team_id": TEAM_ID,
        }

    def _trigger(self, user: str) -> str:
        tid = f"{next(_ids)}.{secrets.token_hex(6)}"
        self.triggers[tid] = {"user": user, "at": time.time(), "used": False}
        return tid

    def _click_payload(self, body: dict[str, Any], base: str) -> dict[str, Any]:
        channel = self._channel(body.get("channel"))
        message = self.by_ts.get((channel["id"], str(body.get("ts") or "")))
        if message is None:
            raise _SlackError("message_not_found")
        user = self._user_ref(body.get("user"))
        action = _find_element(message.get("blocks") or [], body)
        secret = secrets.token_urlsafe(16)
        n = next(_ids)
        self.response_urls[secret] = {
            "channel": channel["id"],
            "ts": message["ts"],
            "user": user["id"],
            "uses": 0,
            "at": time.time(),
        }
        return {
            "type": "block_actions",
            "team": {"id": TEAM_ID, "domain": "acme-sandbox"},
            "user": user,
            "api_app_id": APP_ID,
            "token": "sandbox-verification-token",
            "container": {
                "type": "message",
                "message_ts": message["ts"],
                "channel_id": channel["id"],
                "is_ephemeral": False,
            },
            "trigger_id": self._trigger(user["id"]),
            "channel": {"id": channel["id"], "name": channel["name"]},
            "message": {k: message.get(k) for k in ("type", "ts", "text", "blocks", "bot_id")},
            "response_url": f"{base}/actions/{TEAM_ID}/{n}/{secret}",
            "actions": [{**action, "action_ts": f"{time.time():.6f}"}],
            "state": {"values": {}},
        }

    def _submit_payload(self, body: dict[str, Any]) -> dict[str, Any]:
        view = self.views.get(str(body.get("view_id") or ""))
        if view is None or not view["open"]:
            raise _SlackError("view_not_found")
        user = self._user_ref(body.get("user") or view["user"])
        given = dict(body.get("values") or {})
        values: dict[str, Any] = {}
        for block in view.get("blocks") or []:
            if block.get("type") != "input":
                continue
            element = block["element"]
            bid, aid = block["block_id"], element["action_id"]
            if element["type"] == "static_select":
                options = {o["value"]: o for o in element.get("options") or []}
                if bid in given:
                    chosen = options.get(str(given[bid]))
                    if chosen is None:
                        raise _SlackError("invalid_option")
                else:
                    chosen = element.get("initial_option")
                values[bid] = {aid: {"type": "static_select", "selected_option": chosen}}
            else:
                text = given.get(bid, element.get("initial_value"))
                limit = element.get("max_length")
                if text is not None and limit and len(str(text)) > int(limit):
                    raise _SlackError("too_long")  # the client refuses to submit it
                values[bid] = {aid: {"type": element["type"], "value": text}}
        view["state"] = {"values": values}
        return {
            "type": "view_submission",
            "team": {"id": TEAM_ID, "domain": "acme-sandbox"},
            "user": user,
            "api_app_id": APP_ID,
            "token": "sandbox-verification-token",
            "trigger_id": self._trigger(user["id"]),
            "view": _public_view(view),
            "response_urls": [],
        }

    async def _send(self, payload: dict[str, Any], retries: int) -> dict[str, Any]:
        """POST the payload to the request URL as Slack does (and again for each retry)."""
        if not self.request_url:
            return {"ok": False, "error": "no_request_url", "status": 0}
        body = urlencode({"payload": json.dumps(payload)}).encode()
        answers = []
        async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
            for attempt in range(retries + 1):
                now = int(time.time())
                headers = {
                    "content-type": "application/x-www-form-urlencoded",
                    "x-slack-request-timestamp": str(now),
                    "x-slack-signature": sign(self.signing_secret, now, body),
                }
                if attempt:
                    headers |= {
                        "x-slack-retry-num": str(attempt),
                        "x-slack-retry-reason": "timeout",
                    }
                started = time.perf_counter()
                response = await client.post(self.request_url, content=body, headers=headers)
                elapsed = time.perf_counter() - started
                try:
                    answer: Any = response.json() if response.content else None
                except ValueError:
                    answer = response.text
                record = {
                    "type": payload["type"],
                    "status": response.status_code,
                    "ms": round(elapsed * 1000, 1),
                    "late": elapsed > ANSWER_WITHIN_S,
                    "retry": attempt,
                }
                answers.append({**record, "body": answer})
                with self.lock:
                    self.interactions.append(record)
        last = answers[-1]
        return {
            "ok": True,
            **last,
            "trigger_id": payload.get("trigger_id"),
            "response_url": payload.get("response_url"),
            "answers": answers,
        }


def _find_element(blocks: list[dict[str, Any]], body: dict[str, Any]) -> dict[str, Any]:
    """The button or select the click names, as the action Slack reports."""
    wanted, value, option = body.get("action_id"), body.get("value"), body.get("option")
    for block in blocks:
        for element in block.get("elements") or (
            [block["accessory"]] if block.get("accessory") else []
        ):
            if element.get("action_id") != wanted:
                continue
            if element.get("type") == "button":
                if value is not None and element.get("value") != value:
                    continue
                return {
                    "action_id": wanted,
                    "block_id": block.get("block_id"),
                    "text": element.get("text"),
                    "value": element.get("value"),
                    "type": "button",
                }
            if element.get("type") == "static_select":
                chosen = next(
                    (o for o in element.get("options") or [] if o["value"] == option), None
                )
                if chosen is None:
                    raise _SlackError("invalid_option")
                return {
                    "action_id": wanted,
                    "block_id": block.get("block_id"),
                    "type": "static_select",
                    "selected_option": chosen,
                }
    raise _SlackError("action_not_found")


def _view_arg(raw: Any) -> dict[str, Any]:
    """A view as views.open/update and response_action: update take it, checked as Slack does."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise _SlackError("invalid_arguments") from exc
    if not isinstance(raw, dict) or raw.get("type") != "modal":
        raise _SlackError("invalid_arguments")
    title = (raw.get("title") or {}).get("text") or ""
    blocks = raw.get("blocks") or []
    problems = []
    if not title or len(title) > MAX_TITLE:
        problems.append(
            f"must be less than {MAX_TITLE + 1} characters [json-pointer:/view/title/text]"
        )
    if len(blocks) > MAX_VIEW_BLOCKS:
        problems.append(f"no more than {MAX_VIEW_BLOCKS} items allowed [json-pointer:/view/blocks]")
    if any(b.get("type") == "input" for b in blocks) and not raw.get("submit"):
        problems.append("must provide submit when using input blocks [json-pointer:/view/submit]")
    if len(str(raw.get("private_metadata") or "")) > MAX_METADATA:
        problems.append("must be less than 3001 characters [json-pointer:/view/private_metadata]")
    if len(str(raw.get("callback_id") or "")) > 255:
        problems.append("must be less than 256 characters [json-pointer:/view/callback_id]")
    if problems:
        raise _SlackError(
            "invalid_arguments", response_metadata={"messages": [f"[ERROR] {p}" for p in problems]}
        )
    return dict(raw)


def _public_view(view: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in view.items() if k not in {"open", "user"}}
