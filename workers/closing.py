"""What `on_missing: close` writes, and what undoes it when the item comes back."""

from __future__ import annotations

from typing import Any

from connectors.base import stable_hash

# Connector → how its per-item record is closed; no entry: the connector cannot close one
# (a Slack message is left as it is, and reported).
CLOSE_FIELDS: dict[str, dict[str, Any]] = {
    "asana": {"completed": True},
    "salesforce": {"Status": "Completed"},  # a Task; other objects have no such status
}
# Connector → the fields that reopen a record closed above, unless the plan says otherwise.
REOPEN_FIELDS: dict[str, dict[str, Any]] = {
    "asana": {"completed": False},
    "salesforce": {"Status": "Not Started"},  # Salesforce's default open Task status
}
# Closing and reopening only undo meetsync's own write: a status a person set since stays.
FINISHING_POLICY = "unless_edited"


def close_fields(connector: str, target: dict[str, Any]) -> dict[str, Any] | None:
    """The fields that close a record of `connector` at `target`, or None if none do."""
    if connector == "salesforce" and target.get("object") != "Task":
        return None
    return CLOSE_FIELDS.get(connector)


def reopen_fields(
    connector: str, target: dict[str, Any], planned: dict[str, Any]
) -> dict[str, Any] | None:
    """The fields that reopen a closed record: each back to its planned value, or the default."""
    if close_fields(connector, target) is None:
        return None
    return {name: planned.get(name, value) for name, value in REOPEN_FIELDS[connector].items()}


def finishing(
    action: str, target: dict[str, Any], fields: dict[str, Any], status: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Target, fields and payload hash of a write that also sets `status` (close or reopen).

    The status fields get their own write policy: the mapping's (say `if_empty`, so a
    re-run never reopens what a seller completed) would otherwise stop meetsync from
    closing or reopening a record it wrote itself.
    """
    policies = {**(target.get("write_policy") or {}), **dict.fromkeys(status, FINISHING_POLICY)}
    new_target = {**target, "write_policy": policies}
    new_fields = {**fields, **status}
    return new_target, new_fields, stable_hash([action, new_target, new_fields])
