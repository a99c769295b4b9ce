"""Slack Web API emulator: the methods meetsync calls, with Slack's errors and rate limits.

Every method is `POST /api/<method>` (GET works too), taking form fields, a JSON body or
query parameters, with the token in `Authorization: Bearer` or a `token` field. Like Slack,
it answers HTTP 200 with `{"ok": false, "error": ...}` for API errors and HTTP 429 with
`Retry-After` when rate limited.

Options (`Sandbox(options={"slack": {...}})`):
    channel_rate, channel_burst     chat.postMessage per channel (default 1/s, burst 5)
    workspace_rate, workspace_burst chat.postMessage per workspace (default 10/s, burst 100)
    rate_limits                     False turns both off (benchmarks)
    token                           the bot token the workspace accepts

Admin: `POST /_sandbox/auth {"action": "revoke"|"restore"}`.
"""

from __future__ import annotations

import base64
import json
import math
import time
from bisect import bisect_left
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from sandbox.base import ProviderApp

TOKEN = "xoxb-sandbox-meetsync"
TEAM_ID = "T0SBX0001"
TEAM_NAME = "Acme Analytics"
TEAM_URL = "https://acme-sandbox.slack.com/"
BOT_USER_ID = "U0SBXBOT1"
BOT_ID = "B0SBX0001"
APP_ID = "A0SBX0001"

MAX_TEXT = 40_000  # chat.postMessage truncates/refuses longer text
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3_000
MAX_HEADER_TEXT = 150


class _Bucket:
    """A token bucket on the monotonic clock."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = float(burst), time.monotonic()

    def wait(self) -> float:
        """Seconds until a token is available; 0 when one is there now."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


class _SlackError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error, self.extra = error, extra


class SlackSandbox(ProviderApp):
    """One Slack workspace with its people, channels, the bot and its messages."""

    name = "slack"

    # -- state ------------------------------------------------------------------------
    def seed(self) -> None:
        self.token = self.options.get("token", TOKEN)
        self.revoked = False
        self.users: dict[str, dict[str, Any]] = {}
        for i, person in enumerate(self.world["internal"], start=1):
            uid = f"U0SBX{i:04d}"
            self.users[uid] = _user(uid, person)
        self.by_email = {u["profile"]["email"].lower(): uid for uid, u in self.users.items()}
        self.channels: dict[str, dict[str, Any]] = {}
        for i, spec in enumerate(self.world["slack_channels"], start=1):
            cid = f"C0SBX{i:04d}"
            self.channels[cid] = {
                "id": cid,
                "name": spec["name"],
                "is_member": spec["bot_member"],
                "is_archived": spec["archived"],
                "is_im": False,
                "user": None,
                "created": 1_700_000_000 + i,
            }
        self.by_name = {c["name"]: cid for cid, c in self.channels.items()}
        # Per channel, oldest first (ts only grows); `by_ts` finds one for update/delete.
        self.messages: dict[str, list[dict[str, Any]]] = {cid: [] for cid in self.channels}
        self.by_ts: dict[tuple[str, str], dict[str, Any]] = {}
        self.last_ts = 0.0
        self.channel_buckets: dict[str, _Bucket] = {}
        self.workspace_bucket = _Bucket(
            float(self.options.get("workspace_rate", 10.0)),
            int(self.options.get("workspace_burst", 100)),
        )

    def snapshot(self) -> dict[str, Any]:
        messages = [
            {"channel": cid, "channel_name": self.channels[cid]["name"], **_public(m)}
            for cid, msgs in self.messages.items()
            for m in msgs
        ]
        messages.sort(key=lambda m: m["ts"])
        return {
            "messages": messages,
            "channels": [dict(c) for c in self.channels.values()],
            "users": [{"id": u["id"], "email": u["profile"]["email"]} for u in self.users.values()],
            "revoked": self.revoked,
        }

    def error_response(self, status: int, retry_after: float | None = None) -> JSONResponse:
        """Injected faults as Slack sends them: 429 + Retry-After + `ratelimited`."""
        if status == 429:
            wait = str(math.ceil(retry_after if retry_after is not None else 1))
            return JSONResponse(
                {"ok": False, "error": "ratelimited"},
                status_code=429,
                headers={"Retry-After": wait},
            )
        return JSONResponse({"ok": False, "error": "fatal_error"}, status_code=status)

    # -- routes -----------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        methods = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.delete": self._delete,
            "conversations.history": self._history,
            "conversations.list": self._list,
            "conversations.info": self._info,
            "conversations.open": self._open,
            "users.lookupByEmail": self._lookup_by_email,
            "users.info": self._users_info,
        }

        async def call(request: Request) -> JSONResponse:
            handler = methods.get(request.path_params["method"])
            if handler is None:
                return JSONResponse({"ok": False, "error": "unknown_method"}, status_code=404)
            try:
                args = await _arguments(request)
                with self.lock:
                    self._authenticate(request, args)
                    result = handler(args)
            except _RateLimited as limited:
                return JSONResponse(
                    {"ok": False, "error": "ratelimited"},
                    status_code=429,
                    headers={"Retry-After": str(limited.retry_after)},
                )
            except _SlackError as failed:
                return JSONResponse({"ok": False, "error": failed.error, **failed.extra})
            return JSONResponse({"ok": True, **result})

        async def auth(request: Request) -> JSONResponse:
            action = (await request.json()).get("action")
            if action not in {"revoke", "restore"}:
                return JSONResponse({"error": f"unknown action {action!r}"}, status_code=400)
            with self.lock:
                self.revoked = action == "revoke"
            return JSONResponse({"ok": True, "revoked": self.revoked})

        return [
            Route("/_sandbox/auth", auth, methods=["POST"]),
            Route("/api/{method}", call, methods=["GET", "POST"]),
        ]

    # -- plumbing -----------------------------------------------------------------------
    def _authenticate(self, request: Request, args: dict[str, Any]) -> None:
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else args.get("token")
        if not token:
            raise _SlackError("not_authed")
        if token != self.token:
            raise _SlackError("invalid_auth")
        if self.revoked:
            raise _SlackError("token_revoked")

    def _channel(self, ref: Any) -> dict[str, Any]:
        ref = str(ref or "").lstrip("#")
        cid = ref if ref in self.channels else self.by_name.get(ref)
        if cid is None:
            raise _SlackError("channel_not_found")
        return self.channels[cid]

    def _readable(self, ref: Any) -> dict[str, Any]:
        channel = self._channel(ref)
        if not channel["is_member"]:
            raise _SlackError("not_in_channel")
        return channel

    def _next_ts(self) -> str:
        # Slack's ts is unique per channel and increasing; keep it unique workspace-wide.
        self.last_ts = max(time.time(), self.last_ts + 0.000001)
        return f"{self.last_ts:.6f}"

    def _throttle(self, cid: str) -> None:
        if not self.options.get("rate_limits", True):
            return
        bucket = self.channel_buckets.get(cid)
        if bucket is None:
            bucket = self.channel_buckets[cid] = _Bucket(
                float(self.options.get("channel_rate", 1.0)),
                int(self.options.get("channel_burst", 5)),
            )
        # Check both before taking either, so a refused post costs nothing.
        wait = bucket.wait() or self.workspace_bucket.wait()
        if wait:
            raise _RateLimited(wait)
        bucket.tokens -= 1
        self.workspace_bucket.tokens -= 1

    # -- methods ------------------------------------------------------------------------
    def _auth_test(self, _: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": TEAM_URL,
            "team": TEAM_NAME,
            "user": "meetsync",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        if channel["is_archived"]:
            raise _SlackError("is_archived")
        if not channel["is_member"]:
            raise _SlackError("not_in_channel")
        text, blocks, metadata = _content(args)
        self._throttle(channel["id"])
        message = {
            "type": "message",
            "text": text,
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "team": TEAM_ID,
            "ts": self._next_ts(),
            "blocks": blocks,
            "metadata": metadata,
            "bot_profile": _bot_profile(),
        }
        self.messages[channel["id"]].append(message)
        self.by_ts[(channel["id"], message["ts"])] = message
        return {"channel": channel["id"], "ts": message["ts"], "message": _public(message)}

    def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        ts = str(args.get("ts") or "")
        message = self.by_ts.get((channel["id"], ts))
        if message is None:
            raise _SlackError("message_not_found")
        if message.get("bot_id") != BOT_ID:
            raise _SlackError("cant_update_message")
        if channel["is_archived"]:
            raise _SlackError("is_archived")
        text, blocks, metadata = _content(args)
        message.update(text=text, blocks=blocks, edited={"user": BOT_USER_ID, "ts": ts})
        if metadata is not None:
            message["metadata"] = metadata
        return {
            "channel": channel["id"],
            "ts": ts,
            "text": text,
            "message": _public({"text": text, "blocks": blocks}),
        }

    def _delete(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        ts = str(args.get("ts") or "")
        message = self.by_ts.get((channel["id"], ts))
        if message is None:
            raise _SlackError("message_not_found")
        if message.get("bot_id") != BOT_ID:
            raise _SlackError("cant_delete_message")
        messages = self.messages[channel["id"]]
        del messages[bisect_left(messages, ts, key=_ts)]
        del self.by_ts[(channel["id"], ts)]
        return {"channel": channel["id"], "ts": ts}

    def _history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._readable(args.get("channel"))
        messages = self.messages[channel["id"]]
        # The cursor is the ts the previous page stopped at, so posts in between shift nothing.
        before = _decode_cursor(args.get("cursor"))
        end = bisect_left(messages, before, key=_ts) if before else len(messages)
        limit = max(1, min(_int(args.get("limit"), 100), 999))
        page = messages[max(0, end - limit) : end][::-1]
        with_metadata = _flag(args.get("include_all_metadata"))
        more = end - limit > 0
        return {
            "messages": [_public(m, with_metadata=with_metadata) for m in page],
            "has_more": more,
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
            "response_metadata": {"next_cursor": _encode_cursor(page[-1]["ts"]) if more else ""},
        }

    def _list(self, args: dict[str, Any]) -> dict[str, Any]:
        types = str(args.get("types") or "public_channel").split(",")
        found = [
            c
            for c in self.channels.values()
            if ("im" if c["is_im"] else "public_channel") in types
            and not (_flag(args.get("exclude_archived")) and c["is_archived"])
        ]
        start = _int(_decode_cursor(args.get("cursor")), 0)
        limit = max(1, min(_int(args.get("limit"), 100), 1000))
        more = start + limit < len(found)
        return {
            "channels": [_conversation(c) for c in found[start : start + limit]],
            "response_metadata": {
                "next_cursor": _encode_cursor(str(start + limit)) if more else ""
            },
        }

    def _info(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"channel": _conversation(self._channel(args.get("channel")))}

    def _open(self, args: dict[str, Any]) -> dict[str, Any]:
        users = [u for u in str(args.get("users") or "").split(",") if u]
        if not users:
            raise _SlackError("users_list_not_supplied")
        if len(users) > 1:
            raise _SlackError("method_not_supported_for_channel_type")
        if users[0] not in self.users:
            raise _SlackError("user_not_found")
        cid = "D" + users[0][1:]
        already = cid in self.channels
        if not already:
            self.channels[cid] = {
                "id": cid,
                "name": cid,
                "is_member": True,
                "is_archived": False,
                "is_im": True,
                "user": users[0],
                "created": int(time.time()),
            }
            self.messages[cid] = []
        return {
            "no_op": already,
            "already_open": already,
            "channel": {"id": cid}
            if not _flag(args.get("return_im"))
            else _conversation(self.channels[cid]),
        }

    def _lookup_by_email(self, args: dict[str, Any]) -> dict[str, Any]:
        uid = self.by_email.get(str(args.get("email") or "").lower())
        if uid is None:
            raise _SlackError("users_not_found")
        return {"user": self.users[uid]}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(args.get("user") or ""))
        if user is None:
            raise _SlackError("user_not_found")
        return {"user": user}


class _RateLimited(Exception):
    def __init__(self, wait: float) -> None:
        super().__init__(wait)
        self.retry_after = max(1, math.ceil(wait))


# -- request parsing and validation ---------------------------------------------------------
async def _arguments(request: Request) -> dict[str, Any]:
    """Query parameters, then the form or JSON body, the way Slack merges them."""
    args: dict[str, Any] = dict(request.query_params)
    kind = request.headers.get("content-type", "")
    if request.method == "POST":
        if kind.startswith("application/json"):
            body = await request.body()
            if body:
                try:
                    parsed = json.loads(body)
                except ValueError as exc:
                    raise _SlackError("invalid_json") from exc
                if not isinstance(parsed, dict):
                    raise _SlackError("json_not_object")
                args.update(parsed)
        elif kind.startswith("application/x-www-form-urlencoded"):
            # Parsed here: Starlette's form parser needs python-multipart, which is overkill.
            args.update(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        elif kind.startswith("multipart/form-data"):
            try:
                form = await request.form()
            except AssertionError as exc:  # python-multipart is not installed
                raise _SlackError("invalid_form_data") from exc
            args.update({k: v for k, v in form.items() if isinstance(v, str)})
    return args


def _content(args: dict[str, Any]) -> tuple[str, list[dict[str, Any]] | None, Any]:
    """Validate text, blocks and metadata as chat.postMessage / chat.update do."""
    text = str(args.get("text") or "")
    blocks = _json_arg(args.get("blocks"), "invalid_blocks_format")
    metadata = _json_arg(args.get("metadata"), "invalid_metadata_format")
    if not text and not blocks:
        raise _SlackError("no_text")
    if len(text) > MAX_TEXT:
        raise _SlackError("msg_too_long")
    if blocks is not None:
        problems = _block_problems(blocks)
        if problems:
            raise _SlackError(
                "invalid_blocks",
                errors=problems,
                response_metadata={"messages": [f"[ERROR] {p}" for p in problems]},
            )
    if metadata is not None and (
        not isinstance(metadata, dict)
        or not isinstance(metadata.get("event_type"), str)
        or not isinstance(metadata.get("event_payload", {}), dict)
    ):
        raise _SlackError("invalid_metadata_format")
    return text, blocks, metadata


def _json_arg(value: Any, error: str) -> Any:
    if isinstance(value, str) and value:
        try:
            return json.loads(value)
        except ValueError as exc:
            raise _SlackError(error) from exc
    return value or None


def _block_problems(blocks: Any) -> list[str]:
    if not isinstance(blocks, list):
        return ["must be an array [json-pointer:/blocks]"]
    problems = []
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            problems.append(f"missing required field: type [json-pointer:/blocks/{i}]")
            continue
        text = block.get("text")
        body = text.get("text", "") if isinstance(text, dict) else ""
        limit = MAX_HEADER_TEXT if block["type"] == "header" else MAX_SECTION_TEXT
        if block["type"] in {"section", "header"} and len(body) > limit:
            problems.append(
                f"must be less than {limit + 1} characters [json-pointer:/blocks/{i}/text/text]"
            )
        for j, field in enumerate(block.get("fields") or []):
            if isinstance(field, dict) and len(field.get("text", "")) > 2000:
                problems.append(
                    f"must be less than 2001 characters [json-pointer:/blocks/{i}/fields/{j}]"
                )
    return problems


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() in {"1", "true"}


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _encode_cursor(position: str) -> str:
    return base64.b64encode(f"next:{position}".encode()).decode()


def _decode_cursor(cursor: Any) -> str:
    if not cursor:
        return ""
    try:
        kind, _, position = base64.b64decode(str(cursor)).decode().partition(":")
    except ValueError as exc:
        raise _SlackError("invalid_cursor") from exc
    if kind != "next" or not position:
        raise _SlackError("invalid_cursor")
    return position


def _ts(message: dict[str, Any]) -> str:
    return str(message["ts"])


# -- object shapes ------------------------------------------------------------------------
def _public(message: dict[str, Any], *, with_metadata: bool = True) -> dict[str, Any]:
    """A message as the API shows it: no empty keys, metadata only when asked for."""
    return {
        k: v for k, v in message.items() if v is not None and (with_metadata or k != "metadata")
    }


def _user(uid: str, person: dict[str, Any]) -> dict[str, Any]:
    handle = person["email"].split("@")[0]
    return {
        "id": uid,
        "team_id": TEAM_ID,
        "name": handle,
        "deleted": False,
        "real_name": person["name"],
        "tz": "Europe/London",
        "tz_label": "British Summer Time",
        "tz_offset": 3600,
        "is_admin": False,
        "is_owner": False,
        "is_bot": False,
        "is_app_user": False,
        "updated": 1_700_000_000,
        "profile": {
            "real_name": person["name"],
            "real_name_normalized": person["name"],
            "display_name": handle,
            "display_name_normalized": handle,
            "email": person["email"],
            "title": person.get("title", ""),
            "phone": "",
            "skype": "",
            "status_text": "",
            "status_emoji": "",
            "fields": None,
            "avatar_hash": "g0000000000",
            "team": TEAM_ID,
        },
    }


def _conversation(channel: dict[str, Any]) -> dict[str, Any]:
    if channel["is_im"]:
        return {
            "id": channel["id"],
            "created": channel["created"],
            "is_im": True,
            "is_org_shared": False,
            "user": channel["user"],
            "priority": 0,
            "is_open": True,
            "is_archived": False,
        }
    empty = {"value": "", "creator": "", "last_set": 0}
    return {
        "id": channel["id"],
        "name": channel["name"],
        "name_normalized": channel["name"],
        "created": channel["created"],
        "creator": "U0SBX0001",
        "is_channel": True,
        "is_group": False,
        "is_im": False,
        "is_mpim": False,
        "is_private": False,
        "is_archived": channel["is_archived"],
        "is_general": channel["name"] == "general",
        "is_shared": False,
        "is_org_shared": False,
        "is_ext_shared": False,
        "is_member": channel["is_member"],
        "topic": dict(empty),
        "purpose": dict(empty),
        "previous_names": [],
    }


def _bot_profile() -> dict[str, Any]:
    return {
        "id": BOT_ID,
        "deleted": False,
        "name": "meetsync",
        "updated": 1_700_000_000,
        "app_id": APP_ID,
        "icons": {
            f"image_{n}": f"https://a.slack-edge.com/sandbox/bot_{n}.png" for n in (36, 48, 72)
        },
        "team_id": TEAM_ID,
    }
