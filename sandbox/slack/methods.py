"""The Web API methods meetsync calls: auth.test, chat.*, conversations.* and users.*.

Each takes the call's merged arguments and returns the fields of an `ok` answer, or raises
`_SlackError` with Slack's error code for that method.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from typing import Any

from sandbox.slack.arguments import _decode_cursor, _encode_cursor, _flag, _int
from sandbox.slack.content import _content
from sandbox.slack.errors import _SlackError
from sandbox.slack.shapes import _bot_profile, _conversation, _public
from sandbox.slack.store import OUTSIDE_MARKETPLACE_HISTORY, SlackStore
from sandbox.slack.team import APP_ID, BOT_ID, BOT_USER_ID, TEAM_ID, TEAM_NAME, TEAM_URL


def _ts(message: dict[str, Any]) -> str:
    return str(message["ts"])


class SlackMethods(SlackStore):
    """Slack's Web API methods on the workspace's state."""

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
        # chat.update takes only a channel id: a name is channel_not_found, unlike postMessage
        if str(args.get("channel") or "") not in self.channels:
            raise _SlackError("channel_not_found")
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
        most = 999 if self.marketplace else OUTSIDE_MARKETPLACE_HISTORY[1]
        limit = max(1, min(_int(args.get("limit"), 100), most))
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

    def _users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        members = list(self.users.values())
        start = _int(_decode_cursor(args.get("cursor")), 0)
        limit = max(1, min(_int(args.get("limit"), 100), 1000))
        more = start + limit < len(members)
        return {
            "members": members[start : start + limit],
            "response_metadata": {
                "next_cursor": _encode_cursor(str(start + limit)) if more else ""
            },
        }

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(args.get("user") or ""))
        if user is None:
            raise _SlackError("user_not_found")
        return {"user": user}
