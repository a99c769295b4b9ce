"""600 meetings from a JSONL file: killed halfway, resumed, exactly one write per op.

The CLI runs as a real process on the embedded broker (its workers in the same process)
against the sandbox and a PostgreSQL database; SIGKILL leaves pushes in doubt, which the
resumed run settles with find() before any write.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from sqlalchemy import func, select

from meetsync.bootstrap import seed_demo
from meetsync.db.migrate import upgrade
from meetsync.db.models import Meeting, OpRecord
from meetsync.db.session import engine_for, session_scope
from meetsync.settings import Settings
from sandbox.server import Sandbox
from sandbox.settings_for import settings_for

ROOT = Path(__file__).resolve().parents[1]
MEETINGS = 600
ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def meeting(i: int) -> dict[str, Any]:
    talk = [{"speaker": "Dana Reyes", "start": 1, "text": f"I'll send proposal {i} by Friday."}]
    return {
        "org_id": "acme",
        "meeting_id": f"hist-{i}",
        "title": f"Globex check-in {i}",
        "start": f"2026-02-{1 + i % 28:02d}T15:00:00Z",
        "end": f"2026-02-{1 + i % 28:02d}T15:30:00Z",
        "attendees": [
            {"name": "Dana Reyes", "email": "dana@acme.io", "internal": True},
            {"name": "Hank Scorpio", "email": "hank@globex.com"},
        ],
        # one in 25 has something to extract (an LLM call and an Asana task); every one
        # logs a Salesforce Task
        "transcript": talk if i % 25 == 0 else [],
    }


@pytest.fixture
def database() -> Iterator[str]:
    name = f"meetsync_backfill_{os.getpid()}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    yield url
    engine_for(url).dispose()
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def env_for(settings: Settings) -> dict[str, str]:
    connections = {
        name: {
            **conn.model_dump(mode="json"),
            "credentials": {k: v.get_secret_value() for k, v in conn.credentials.items()},
        }
        for name, conn in settings.connections.items()
    }
    fast = {"rate": 2000, "burst": 2000, "concurrency": 20}
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("MEETSYNC_")},
        "MEETSYNC_MODE": "demo",
        "MEETSYNC_DATABASE_URL": settings.database_url,
        "MEETSYNC_BROKER_URL": "stub",
        "MEETSYNC_LLM__BASE_URL": settings.llm.base_url,
        "MEETSYNC_CONNECTIONS": json.dumps(connections),
        "MEETSYNC_THROTTLE__BACKEND": "memory",
        "MEETSYNC_THROTTLE__CONNECTORS": json.dumps({"salesforce": fast, "asana": fast}),
        # the emulator's LLM is not the subject here: no tier-1 token budget to wait on
        "MEETSYNC_THROTTLE__LLM_LIMITS": json.dumps({"*": {"rpm": 100_000, "tpm": 1e9}}),
        "MEETSYNC_RETRY__LEASE_S": "3",
        "MEETSYNC_RETRY__MIN_BACKOFF_MS": "100",
        "COLUMNS": "120",
    }


def done_ops(url: str) -> int:
    with session_scope(url) as session:
        return int(
            session.scalar(
                select(func.count()).select_from(OpRecord).where(OpRecord.state == "done")
            )
            or 0
        )


@pytest.mark.slow
def test_a_killed_backfill_resumes_and_writes_each_op_exactly_once(
    sandbox: Sandbox, database: str, tmp_path: Path
) -> None:
    sandbox.reset()
    settings = settings_for(sandbox, database_url=database)
    mapping = yaml.safe_load((ROOT / "mappings" / "examples" / "acme.yaml").read_text())
    mapping["destinations"] = [d for d in mapping["destinations"] if d["connector"] != "slack"]
    mapping_file = tmp_path / "acme.yaml"
    mapping_file.write_text(yaml.safe_dump(mapping, sort_keys=False))
    upgrade(database)
    with session_scope(database) as session:
        seed_demo(session, settings, mapping_file)
    source = tmp_path / "meetings.jsonl"
    source.write_text("".join(json.dumps(meeting(i)) + "\n" for i in range(MEETINGS)))
    command = [
        str(Path(sys.executable).parent / "meetsync"), "backfill", "--org", "acme",
        "--since", "2026-02-01", "--until", "2026-03-01", "--source", f"file:{source}",
        "--providers", "salesforce,asana", "--threads", "6",
    ]  # fmt: skip
    env = env_for(settings)

    # given a backfill killed (SIGKILL, no cleanup) with about half of its ops written
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while done_ops(database) < MEETINGS // 2:
        assert first.poll() is None, first.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline, "the first run made no progress"
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert done_ops(database) < MEETINGS  # it really stopped halfway

    # when the same command runs again
    second = subprocess.run(command, env=env, capture_output=True, timeout=170)

    # expect it to resume, finish, and every op written exactly once
    output = second.stdout.decode() + second.stderr.decode()
    assert second.returncode == 0, output[-3000:]
    assert "resuming run" in output and "processed" in output
    with session_scope(database) as session:
        ops = session.scalars(select(OpRecord)).all()
        meetings = session.scalar(select(func.count()).select_from(Meeting))
    assert meetings == MEETINGS
    assert Counter(op.state for op in ops) == {"done": len(ops)}
    by_connector = Counter(op.connector for op in ops)
    assert by_connector["salesforce"] >= MEETINGS and by_connector["asana"] == MEETINGS // 25
    # a write whose client was killed before its body arrived was never applied: count the
    # 2xx answers, which a write that landed just before the kill still has
    sf = sandbox.admin("salesforce").stats()["answered_2xx"]
    task_writes = {r: n for r, n in sf.items() if r.startswith("PATCH") and "/Task/" in r}
    assert len(task_writes) == by_connector["salesforce"] - _opportunity_ops(ops)
    assert set(task_writes.values()) == {1}  # one upsert per Task op, none repeated
    asana = sandbox.admin("asana").stats()["answered_2xx"]
    assert asana.get("POST /api/1.0/tasks") == by_connector["asana"]

    # and a second full run writes nothing new
    before = (dict(sf), dict(asana))
    again = subprocess.run([*command, "--restart"], env=env, capture_output=True, timeout=120)
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    after = (
        sandbox.admin("salesforce").stats()["answered_2xx"],
        sandbox.admin("asana").stats()["answered_2xx"],
    )
    assert _writes(after) == _writes(before)


def _opportunity_ops(ops: list[OpRecord]) -> int:
    return sum(
        1
        for op in ops
        if op.connector == "salesforce"
        and "/Task/" not in str(op.target)
        and (op.target or {}).get("object") == "Opportunity"
    )


def _writes(stats: tuple[dict[str, int], dict[str, int]]) -> dict[str, int]:
    return {
        route: n
        for counts in stats
        for route, n in counts.items()
        if route.split()[0] in {"POST", "PATCH", "PUT", "DELETE"} and "oauth2" not in route
    }
