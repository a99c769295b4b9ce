"""The workspace's state, seeded from the world: people, channels, messages, rate limits.

`SlackStore` holds it and finds channels by id or name, allocates message timestamps and
applies Slack's rate limits: chat.postMessage's per-channel and per-workspace limits, and
every other method's tier (https://api.slack.com/apis/rate-limits): Tier 2 is 20 calls a
minute, Tier 3 50, Tier 4 100, per method and workspace, with a burst of a minute's worth.
An app distributed outside the Slack Marketplace (`marketplace: False`) gets what Slack
gives such apps since 2025-05-29: conversations.history at 1 call a minute and at most 15
messages a page. Callers hold the lock.
"""

from __future__ import annotations

import time
from typing import Any

from sandbox.base import ProviderApp
from sandbox.slack.bucket import _Bucket
from sandbox.slack.errors import _RateLimited, _SlackError
from sandbox.slack.shapes import _public, _user
from sandbox.slack.team import TOKEN

# calls a minute per tier; chat.postMessage is "special" (per channel, below)
TIER_RATE = {2: 20, 3: 50, 4: 100}
METHOD_TIERS = {
    "auth.test": 4,
    "chat.update": 3,
    "chat.delete": 3,
    "conversations.history": 3,
    "conversations.info": 3,
    "conversations.list": 2,
    "conversations.open": 3,
    "users.info": 4,
    "users.lookupByEmail": 3,
}
OUTSIDE_MARKETPLACE_HISTORY = (1, 15)  # calls a minute, messages a page


class SlackStore(ProviderApp):
    """The seeded workspace in memory, and the lookups and limits every method uses."""

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
        self.marketplace = bool(self.options.get("marketplace", True))
        self.method_buckets: dict[str, _Bucket] = {}
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

    def _tier_limit(self, method: str) -> None:
        """The method's tier: 429 with Retry-After when its minute's calls are spent."""
        if not self.options.get("rate_limits", True) or method not in METHOD_TIERS:
            return
        per_minute = TIER_RATE[METHOD_TIERS[method]]
        if method == "conversations.history" and not self.marketplace:
            per_minute = OUTSIDE_MARKETPLACE_HISTORY[0]
        bucket = self.method_buckets.get(method)
        if bucket is None:
            bucket = self.method_buckets[method] = _Bucket(per_minute / 60, per_minute)
        wait = bucket.wait()
        if wait:
            raise _RateLimited(wait)
        bucket.tokens -= 1

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
