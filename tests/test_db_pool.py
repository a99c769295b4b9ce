"""A worker process keeps a database connection per thread: none opened and closed per use."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest
from sqlalchemy import event, text

from cli.serve import POOL_SPARE, run_workers
from meetsync.db.session import POOL_SIZE_ENV, engine_for, session_scope
from meetsync.settings import Settings


def test_meetsync_worker_sizes_the_pool_to_its_threads(
    monkeypatch: pytest.MonkeyPatch, postgres_url: str, redis_url: str
) -> None:
    # given: `meetsync worker --threads 6`, stopped where it would become dramatiq
    monkeypatch.delenv(POOL_SIZE_ENV, raising=False)
    became: dict[str, Any] = {}

    def execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        became.update(argv=argv, env=env)

    monkeypatch.setattr(os, "execve", execve)
    settings = Settings(mode="demo", database_url=postgres_url, broker_url=redis_url)

    # when
    run_workers(settings, processes=2, threads=6)

    # expect: every worker thread, and a few more, may hold a connection at once
    assert became["argv"][-4:] == ["--processes", "2", "--threads", "6"]
    assert became["env"][POOL_SIZE_ENV] == str(6 + POOL_SPARE)


def test_the_pool_keeps_as_many_connections_as_it_is_sized_for(
    monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    # given: a pool of 6, every connection it opens counted, and 6 threads that each hold a
    # session at the same time
    monkeypatch.setenv(POOL_SIZE_ENV, "6")
    url = f"{postgres_url}?application_name=pool-sized"
    engine = engine_for(url)
    opened: list[object] = []
    event.listen(engine, "connect", lambda connection, _: opened.append(connection))
    together = threading.Barrier(6)

    def hold() -> None:
        with session_scope(url) as session:
            session.execute(text("SELECT 1"))
            together.wait(timeout=30)

    def round_of_six() -> None:
        threads = [threading.Thread(target=hold) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    round_of_six()
    assert len(opened) == 6

    # when
    round_of_six()

    # expect: the second round reused the six connections the first one opened
    assert engine.pool.size() == 6  # type: ignore[attr-defined]
    assert len(opened) == 6
    engine.dispose()
