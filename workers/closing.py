"""What `on_missing: close` writes: the fields that mark an item's record as finished."""

from __future__ import annotations

from typing import Any

# Connector → how its per-item record is closed; no entry: the connector cannot close one
# (a Slack message is left as it is, and reported).
CLOSE_FIELDS: dict[str, dict[str, Any]] = {
    "asana": {"completed": True},
    "salesforce": {"Status": "Completed"},  # a Task; other objects have no such status
}


def close_fields(connector: str, target: dict[str, Any]) -> dict[str, Any] | None:
    """The fields that close a record of `connector` at `target`, or None if none do."""
    if connector == "salesforce" and target.get("object") != "Task":
        return None
    return CLOSE_FIELDS.get(connector)
