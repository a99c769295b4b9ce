"""What `on_missing: close` writes, and what undoes it when the item comes back.

Which fields close or reopen a record is the connector's fact (`ConnectorFacts.closing`,
`reopening`); a connector without them cannot close one (a Slack message is left as it
is, and reported).
"""

from __future__ import annotations

from typing import Any

from connectors.base import payload_hash
from connectors.registry import facts

# Closing and reopening only undo meetsync's own write: a status a person set since stays.
FINISHING_POLICY = "unless_edited"


def close_fields(connector: str, target: dict[str, Any]) -> dict[str, Any] | None:
    """The fields that close a record of `connector` at `target`, or None if none do."""
    return facts(connector).closing(target)


def reopen_fields(
    connector: str, target: dict[str, Any], planned: dict[str, Any]
) -> dict[str, Any] | None:
    """The fields that reopen a closed record: each back to its planned value, or the default."""
    reopening = facts(connector).reopening(target)
    if reopening is None or close_fields(connector, target) is None:
        return None
    return {name: planned.get(name, value) for name, value in reopening.items()}


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
    return new_target, new_fields, payload_hash(action, new_target, new_fields)
