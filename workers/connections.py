"""Builds connectors from the connections stored in the database, one per process each."""

from __future__ import annotations

import threading

from sqlalchemy.orm import Session

from connectors.base import ConnectionConfig, Connector
from connectors.registry import build
from meetsync.crypto import unseal
from meetsync.db.models import Connection
from meetsync.settings import Settings
from workers.instrumented import Instrumented


class ConnectionMissing(LookupError):
    """An op names a connection that does not exist."""


class ConnectorCache:
    """Connectors keep SDK sessions and lookup caches, so build each connection once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._built: dict[tuple[str, str], Connector] = {}
        self._lock = threading.Lock()

    def cached(self, name: str) -> Connector | None:
        """The connector last built for a connection, without a database read."""
        with self._lock:
            built = [c for (n, _), c in self._built.items() if n == name]
        return built[-1] if built else None

    def get(self, session: Session, name: str) -> Connector:
        row = session.get(Connection, name)
        if row is None:
            raise ConnectionMissing(f"no connection named {name!r}")
        cache_key = (name, row.credentials)
        with self._lock:
            if cache_key not in self._built:
                config = ConnectionConfig(
                    name=row.name,
                    provider=row.provider,
                    base_url=row.base_url,
                    credentials=unseal(self.settings, row.credentials),
                    options=dict(row.options or {}),
                )
                # measured and logged: latency, errors by class (workers.instrumented)
                self._built[cache_key] = Instrumented(build(config), name)  # type: ignore[assignment]
            return self._built[cache_key]
