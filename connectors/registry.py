"""Finds connectors through the `meetsync.connectors` entry-point group."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import Any

from connectors.base import ConnectionConfig, Connector, ConnectorFacts

GROUP = "meetsync.connectors"


class UnknownConnector(LookupError):
    """No connector of that name is installed."""


@cache
def available() -> dict[str, Any]:
    """Connector classes by name, as installed."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def connector_class(name: str) -> type:
    eps = available()
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none"
        raise UnknownConnector(f"no connector named {name!r}; installed: {known}")
    cls: type = eps[name].load()
    return cls


def build(config: ConnectionConfig) -> Connector:
    """Instantiate the connector for a connection."""
    connector: Connector = connector_class(config.provider)(config)
    return connector


def facts(name: str) -> type[ConnectorFacts]:
    """What the connector says of itself; the defaults for one unknown or declaring nothing."""
    try:
        cls = connector_class(name)
    except (UnknownConnector, ImportError):
        return ConnectorFacts
    return cls if issubclass(cls, ConnectorFacts) else ConnectorFacts
