"""Objects as the Slack API shows them: messages, users, conversations and the bot profile.

Pure functions of the store's records, so every method answers with the same shapes.
"""

from __future__ import annotations

from typing import Any

from sandbox.slack.team import APP_ID, BOT_ID, TEAM_ID


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
