"""Fixtures shared by every test: the sandbox emulators, real services, settings."""

from __future__ import annotations

import os

# before anything reads settings: an operator's .env in the checkout (`meetsync init`)
# must never reach a test
os.environ["MEETSYNC_ENV_FILE"] = ""

from collections.abc import Iterator

import pytest

from sandbox.server import Sandbox

# slack-sdk honours HTTPS_PROXY and ignores NO_PROXY: loopback traffic must never leave.
# the suite runs in demo mode: demo secrets and loopback sandbox endpoints are allowed;
# tests of production mode say so on their Settings
os.environ["MEETSYNC_MODE"] = "demo"

for _var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_var, None)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """All four emulators on ephemeral loopback ports, shared by the session."""
    with Sandbox() as running:
        yield running


@pytest.fixture
def clean_sandbox(sandbox: Sandbox) -> Sandbox:
    """The shared sandbox, reset to its seeded world before the test."""
    sandbox.reset()
    return sandbox


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test, dropped afterwards."""
    import uuid

    import psycopg

    name = f"meetsync_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    from meetsync.db.session import engine_for

    engine_for(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}").dispose()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url() -> str:
    """Redis database 15, emptied for the test."""
    import redis

    url = "redis://127.0.0.1:6379/15"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture
def sqlite_url(tmp_path: object) -> str:
    return f"sqlite:///{tmp_path}/meetsync.db"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of an optional extra run when asked for (`-m semantic`), else are deselected,
    which pytest reports: never a silent skip."""
    if "semantic" in (config.option.markexpr or ""):
        return
    deselected = [item for item in items if item.get_closest_marker("semantic")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker("semantic")]
