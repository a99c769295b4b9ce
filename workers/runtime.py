"""What a worker process needs at hand: settings, database sessions, connectors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from meetsync.db.session import session_scope
from meetsync.settings import Settings
from workers.connections import ConnectorCache


@dataclass
class Runtime:
    settings: Settings
    connectors: ConnectorCache = field(init=False)

    def __post_init__(self) -> None:
        self.connectors = ConnectorCache(self.settings)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with session_scope(self.settings.database_url) as session:
            yield session
