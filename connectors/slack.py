"""Slack: posts a meeting recap to a channel, idempotently, through slack-sdk's WebClient.

Idempotency rides on Slack message metadata: every message we post carries
`{"event_type": "meetsync_op", "event_payload": {"op_key", "payload_hash", "part", "parts"}}`,
so `find()` recognises our messages in a channel's history after a lost response, and a
re-apply with a receipt edits those messages (chat.update) instead of posting again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from http.client import HTTPException
from typing import Any, ClassVar
from urllib.parse import urlsplit
from urllib.request import HTTPSHandler, ProxyHandler, Request, build_opener

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web import SlackResponse

from connectors.base import (
    Check,
    ConnectionConfig,
    ConnectorFacts,
    Limits,
    Op,
    Receipt,
    TargetSchema,
)
from connectors.errors import (
    AuthExpired,
    ConnectorError,
    InvalidMapping,
    Permanent,
    RateLimited,
    Transient,
)
from connectors.slack_blocks import SlackMessage, render_owner_items, render_recap

EVENT_TYPE = "meetsync_op"
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{8,}$")
AUTH_ERRORS = {"invalid_auth", "token_revoked", "account_inactive", "not_authed", "token_expired"}
TARGET_ERRORS = {"channel_not_found", "not_in_channel", "is_archived"}
TRANSIENT_ERRORS = {"fatal_error", "internal_error", "service_unavailable", "request_timeout"}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# slack-sdk logs request bodies (recap text, i.e. transcript content) when its logger is at
# DEBUG; its own logger, pinned at INFO, keeps that out whatever the root level is.
SDK_LOGGER = logging.getLogger("connectors.slack.sdk")
SDK_LOGGER.setLevel(logging.INFO)


def error_for(status: int, headers: dict[str, Any], error: str) -> ConnectorError:
    """The one place a Slack answer becomes a connector error."""
    if status == 429 or error in {"ratelimited", "rate_limited"}:
        wait = _seconds(headers.get("Retry-After") or headers.get("retry-after"))
        return RateLimited(
            "Slack asked us to slow down", retry_after=float(wait), provider_code="ratelimited"
        )
    if status >= 500 or error in TRANSIENT_ERRORS:
        return Transient(f"Slack answered HTTP {status}", provider_code=error or str(status))
    if error in AUTH_ERRORS:
        return AuthExpired("the Slack bot token no longer works", provider_code=error)
    if error in TARGET_ERRORS:
        return InvalidMapping(f"Slack refused the channel: {error}", provider_code=error)
    return Permanent(f"Slack refused the request: {error}", provider_code=error or str(status))


@contextmanager
def slack_errors() -> Iterator[None]:
    """Translate whatever the SDK raises into our error tree."""
    try:
        yield
    except SlackApiError as exc:
        response = exc.response
        data = response.data if isinstance(response.data, dict) else {}
        raise error_for(response.status_code, response.headers, str(data.get("error", ""))) from exc
    except SlackRequestError as exc:
        raise Permanent(f"slack-sdk refused the request: {exc}") from exc
    except (HTTPException, OSError) as exc:
        # Resets, timeouts, refused connections and responses cut short (IncompleteRead).
        raise Transient(f"no complete answer from Slack: {type(exc).__name__}") from exc


class _DirectWebClient(WebClient):
    """A WebClient for which `proxy=None` means a direct connection.

    slack-sdk's own fallback (`urlopen`) builds an opener that reads HTTP(S)_PROXY from the
    environment and, on Linux, honours NO_PROXY only if it is set: loopback traffic to the
    sandbox could leave the machine. This opener has no proxy at all.
    """

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        if self.proxy is not None or not url.lower().startswith("http"):
            result: dict[str, Any] = super()._perform_urllib_http_request_internal(url, req)
            return result
        opener = build_opener(ProxyHandler({}), HTTPSHandler(context=self.ssl))
        with opener.open(req, timeout=self.timeout) as resp:
            charset = resp.headers.get_content_charset() or "utf-8"
            return {
                "status": resp.code,
                "headers": resp.headers,
                "body": resp.read().decode(charset),
            }


class SlackConnector(ConnectorFacts):
    """Posts recaps (`post_message`) to channels, and optionally each owner's items by DM."""

    name: ClassVar[str] = "slack"
    # the provider's own hosts; any other needs the operator's allow-list
    endpoint_hosts: ClassVar[tuple[str, ...]] = ("slack.com",)
    # chat.postMessage allows about one message per second per channel, with short bursts
    # (https://api.slack.com/methods/chat.postMessage#rate_limiting); one credential often
    # posts to one channel, so we budget for that channel's limit.
    default_limits: ClassVar[Limits] = Limits(rate=1.0, burst=3, concurrency=1)
    # the bot's tier for the whole workspace, shared by every channel's flow
    workspace_limits: ClassVar[Limits | None] = Limits(rate=5.0, burst=50, concurrency=4)
    actions: ClassVar[tuple[str, ...]] = ("post_message",)
    credential_sets = (("bot_token",),)  # the app's xoxb- bot token

    def __init__(self, config: ConnectionConfig) -> None:
        self.config = config
        base_url = config.base_url or "https://slack.com/api/"
        loopback = urlsplit(base_url).hostname in LOOPBACK
        self.client = _DirectWebClient(
            token=config.credentials.get("bot_token"),
            base_url=base_url,
            timeout=int(config.options.get("timeout", 15)),
            proxy=None if loopback else config.options.get("proxy"),
            # No SDK retries: a retried chat.postMessage after a lost response posts twice.
            retry_handlers=[],
            logger=SDK_LOGGER,
        )
        if loopback:
            self.client.proxy = None  # WebClient reads HTTPS_PROXY when given none
        # an app outside the Slack Marketplace reads history once a minute, 15 messages a
        # page: one page is all find() can afford (connectors/README.md)
        pages = 5 if config.options.get("marketplace", True) else 1
        self.history_pages = int(config.options.get("find_pages", pages))
        self._users: dict[str, str | None] = {}
        self._channels: dict[str, str] = {}
        self._workspace_url: str | None = config.options.get("workspace_url")

    # -- Connector ----------------------------------------------------------------------
    def describe(self, target: dict[str, Any]) -> TargetSchema:
        """Whether the channel exists, and whether the bot can post there."""
        ref = str(target.get("channel", ""))
        try:
            channel = self._channel_info(ref)
        except InvalidMapping as exc:
            return TargetSchema(target=target, exists=False, notes=[f"{ref}: {exc.provider_code}"])
        notes = []
        if channel.get("is_archived"):
            notes.append(f"#{channel.get('name')} is archived: posts will fail")
        if not channel.get("is_member") and not channel.get("is_im"):
            notes.append(f"the bot is not in #{channel.get('name')}: invite it with /invite")
        return TargetSchema(target=target, exists=True, notes=notes, fields=[])

    def apply(self, op: Op, prior: Receipt | None) -> Receipt:
        """Post the recap, or edit the messages `prior` points at."""
        if op.action != "post_message":
            raise InvalidMapping(f"slack has no action {op.action!r}; it knows post_message")
        if prior is not None and _is_current(prior, op):
            return prior
        messages = render_recap(op.fields, self._mention, rating_key=op.key)
        if prior is not None:
            channel, _, first = prior.external_id.partition(":")
            channel = str(prior.extra.get("channel") or channel)
            old = list(prior.extra.get("ts") or [first])
        else:
            channel, old = self._channel_id(str(op.target.get("channel", ""))), []
        stamps = self._write(channel, old, messages, op)
        receipt = self._receipt(op, channel, stamps, parts=len(messages))
        if op.fields.get("dm_owners"):
            receipt.extra["dms"] = self._send_dms(op, prior.extra.get("dms", {}) if prior else {})
        return receipt

    def find(self, op: Op) -> Receipt | None:
        """Our messages for this op in the channel's recent history, if any were posted."""
        channel = self._channel_id(str(op.target.get("channel", "")))
        found = self._ours(channel, op.key)
        if not found:
            return None
        parts = int(found[0]["metadata"]["event_payload"].get("parts", len(found)))
        receipt = self._receipt(op, channel, [m["ts"] for m in found], parts=parts)
        if len(found) >= parts:  # a recap cut short is not this payload yet: re-apply fills it
            receipt.extra["payload_hash"] = found[0]["metadata"]["event_payload"].get(
                "payload_hash"
            )
        return receipt

    def check(self) -> list[Check]:
        """`connections test`: auth.test, then which channels the bot can see and post in."""
        try:
            with slack_errors():
                auth = self.client.auth_test()
        except ConnectorError as exc:
            return [Check(name="auth.test", ok=False, detail=f"{type(exc).__name__}: {exc}")]
        checks = [
            Check(
                name="auth.test",
                ok=True,
                detail=f"bot {auth.get('user')} ({auth.get('user_id')}) in {auth.get('team')}",
            )
        ]
        try:
            with slack_errors():
                listed = self.client.conversations_list(
                    types="public_channel,private_channel", limit=1000
                )
        except ConnectorError as exc:
            checks.append(Check(name="channels", ok=False, detail=f"{type(exc).__name__}: {exc}"))
            return checks
        channels: list[dict[str, Any]] = listed.get("channels", [])
        member = sorted(f"#{c['name']}" for c in channels if c.get("is_member"))
        detail = f"sees {len(channels)} channels; member of {', '.join(member) or 'none'}"
        checks.append(Check(name="channels", ok=True, detail=detail))
        return checks

    # -- writing ------------------------------------------------------------------------
    def _write(
        self, channel: str, old: list[str], messages: list[SlackMessage], op: Op
    ) -> list[str]:
        """Edit what exists, post what is missing, delete what is no longer needed."""
        stamps: list[str] = []
        for part, message in enumerate(messages, start=1):
            metadata = _metadata(op, part, len(messages))
            ts = old[part - 1] if part <= len(old) else None
            if ts is not None and self._update(channel, ts, message, metadata):
                stamps.append(ts)
            else:
                stamps.append(self._post(channel, message, metadata))
        for ts in old[len(messages) :]:
            self._delete(channel, ts)
        return stamps

    def _post(self, channel: str, message: SlackMessage, metadata: dict[str, Any]) -> str:
        with slack_errors():
            response = self.client.chat_postMessage(
                channel=channel,
                text=message.text,
                blocks=message.blocks,
                metadata=metadata,
                unfurl_links=False,
                unfurl_media=False,
            )
        return str(response["ts"])

    def _update(
        self, channel: str, ts: str, message: SlackMessage, metadata: dict[str, Any]
    ) -> bool:
        """Edit a message in place; False when someone deleted it and it must be posted anew."""
        try:
            with slack_errors():
                self.client.chat_update(
                    channel=channel,
                    ts=ts,
                    text=message.text,
                    blocks=message.blocks,
                    metadata=metadata,
                )
        except Permanent as exc:
            if exc.provider_code == "message_not_found":
                return False
            raise
        return True

    def _delete(self, channel: str, ts: str) -> None:
        try:
            with slack_errors():
                self.client.chat_delete(channel=channel, ts=ts)
        except Permanent as exc:
            if exc.provider_code != "message_not_found":
                raise

    def _receipt(self, op: Op, channel: str, stamps: list[str], *, parts: int) -> Receipt:
        return Receipt(
            external_id=f"{channel}:{stamps[0]}",
            url=self._permalink(channel, stamps[0]),
            object="message",
            extra={
                "channel": channel,
                "ts": stamps,
                "parts": parts,
                "payload_hash": op.payload_hash,
            },
        )

    # -- reading ------------------------------------------------------------------------
    def _ours(self, channel: str, op_key: str, *, pages: int | None = None) -> list[dict[str, Any]]:
        """Messages in recent history carrying this op's key, in part order."""
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(pages or self.history_pages):
            with slack_errors():
                response = self.client.conversations_history(
                    channel=channel, limit=200, cursor=cursor, include_all_metadata=True
                )
            messages: list[dict[str, Any]] = response.get("messages", [])
            for message in messages:
                meta = message.get("metadata") or {}
                payload = meta.get("event_payload") or {}
                if meta.get("event_type") == EVENT_TYPE and payload.get("op_key") == op_key:
                    found.append(message)
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return sorted(found, key=lambda m: int(m["metadata"]["event_payload"].get("part", 1)))

    def _channel_info(self, ref: str) -> dict[str, Any]:
        with slack_errors():
            channel: dict[str, Any] = self.client.conversations_info(channel=self._channel_id(ref))[
                "channel"
            ]
        return channel

    def _channel_id(self, ref: str) -> str:
        """A channel's id from `#name`, `name` or an id; history and updates need the id."""
        name = ref.lstrip("#")
        if CHANNEL_ID.match(name):
            return name
        if name not in self._channels:
            self._load_channels()
        if name not in self._channels:
            raise InvalidMapping(
                f"no Slack channel named #{name}", provider_code="channel_not_found"
            )
        return self._channels[name]

    def _load_channels(self) -> None:
        cursor: str | None = None
        while True:
            with slack_errors():
                response: SlackResponse = self.client.conversations_list(
                    types="public_channel,private_channel", limit=1000, cursor=cursor
                )
            channels: list[dict[str, Any]] = response.get("channels", [])
            for channel in channels:
                self._channels[channel["name"]] = channel["id"]
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return

    def _mention(self, name: str | None, email: str | None) -> str | None:
        """`<@U…>` for an owner Slack knows by email; None to fall back to their name."""
        user = self._user_id(email)
        return f"<@{user}>" if user else None

    def people(self) -> list[dict[str, Any]]:
        """For org memory (`meetsync memory sync`): the workspace's members and their ids."""
        found: list[dict[str, Any]] = []
        cursor = None
        while True:
            with slack_errors():
                page = self.client.users_list(cursor=cursor, limit=200)
            members: list[dict[str, Any]] = page.get("members", [])
            for member in members:
                if member.get("deleted") or member.get("is_bot") or not member.get("real_name"):
                    continue
                email = (member.get("profile") or {}).get("email")
                person = {"ref": member["id"], "name": member["real_name"], "email": email}
                found.append(person | {"slack_id": member["id"]})
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return found

    def _user_id(self, email: str | None) -> str | None:
        if not email:
            return None
        key = email.strip().lower()
        if key not in self._users:
            try:
                with slack_errors():
                    response = self.client.users_lookupByEmail(email=key)
                self._users[key] = str(response["user"]["id"])
            except Permanent:
                # users_not_found, or no users:read.email scope: name the owner in plain text.
                self._users[key] = None
        return self._users[key]

    def _permalink(self, channel: str, ts: str) -> str:
        if self._workspace_url is None:
            with slack_errors():
                self._workspace_url = str(self.client.auth_test()["url"])
        return f"{self._workspace_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"

    # -- direct messages to owners --------------------------------------------------------
    def _send_dms(self, op: Op, prior: dict[str, Any]) -> dict[str, Any]:
        """Each owner Slack knows gets their own items by DM, edited in place on re-apply."""
        by_owner: dict[str, list[dict[str, Any]]] = {}
        for item in op.fields.get("action_items") or []:
            user = self._user_id(item.get("owner_email"))
            if user:
                by_owner.setdefault(user, []).append(item)
        sent: dict[str, Any] = {}
        title = str(op.fields.get("title") or "a meeting")
        for user, items in by_owner.items():
            messages = render_owner_items(title, items, op.fields.get("meeting_url"), self._mention)
            dm_key = f"{op.key}:dm:{user}"
            earlier = prior.get(user)
            if earlier is None:
                channel = self._open_dm(user)
                found = self._ours(channel, dm_key, pages=1)
                earlier = {"channel": channel, "ts": [m["ts"] for m in found]}
            dm_op = op.model_copy(update={"key": dm_key})
            stamps = self._write(str(earlier["channel"]), list(earlier["ts"]), messages, dm_op)
            sent[user] = {"channel": earlier["channel"], "ts": stamps}
        return sent

    def _open_dm(self, user: str) -> str:
        with slack_errors():
            return str(self.client.conversations_open(users=user)["channel"]["id"])


def _seconds(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 1.0  # Slack always sends Retry-After; without one, wait a little anyway


def _metadata(op: Op, part: int, parts: int) -> dict[str, Any]:
    payload = {"op_key": op.key, "payload_hash": op.payload_hash, "part": part, "parts": parts}
    return {"event_type": EVENT_TYPE, "event_payload": payload}


def _is_current(prior: Receipt, op: Op) -> bool:
    """The receipt already shows this exact payload, every part of it."""
    stamps = prior.extra.get("ts") or []
    complete = len(stamps) == int(prior.extra.get("parts", len(stamps)))
    # A receipt from find() knows nothing of DMs: re-apply then looks for them and fills gaps.
    dms_known = not op.fields.get("dm_owners") or "dms" in prior.extra
    return prior.extra.get("payload_hash") == op.payload_hash and complete and dms_known
