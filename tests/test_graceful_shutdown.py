"""SIGTERM (a rollout, a scale-down) loses nothing: a worker finishes the messages in hand,
returns the ones it prefetched, and a worker started after it completes the rest, exactly
once. Real Redis, real PostgreSQL, real `meetsync worker` processes; no sweeper help.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from intake.app import create_app
from intake.client import post_meeting
from intake.serving import BackgroundServer
from sandbox.server import Sandbox
from sandbox.settings_for import settings_for
from tests.admin_cli import admin_auth
from tests.test_end_to_end import MEETING, _as_env, _prepare, held_by_meetsync, wait_final
from workers.actors import declare
from workers.broker import make_broker
from workers.runtime import Runtime

MEETINGS = 4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def in_progress(url: str) -> float:
    """Messages the worker is processing now, from its own metrics."""
    try:
        text = httpx.get(url, timeout=2, trust_env=False).text
    except httpx.TransportError:
        return 0
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "dramatiq_messages_inprogress"
    )


@pytest.mark.slow
@pytest.mark.integration
def test_a_worker_stopped_mid_message_loses_nothing(
    clean_sandbox: Sandbox, postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    # given: an LLM slow enough that extractions are in hand when the worker is stopped
    clean_sandbox.admin("openai").configure_faults(
        [{"kind": "latency", "path": "/v1/chat/completions", "latency": {"fixed": 1.5}}]
    )
    server = BackgroundServer()
    broker_url = f"{redis_url}?namespace=sigterm-{uuid.uuid4().hex[:8]}"
    settings = settings_for(
        clean_sandbox,
        database_url=postgres_url,
        broker_url=broker_url,
        redis_url=redis_url,
        public_base_url=server.url,
    )
    _prepare(settings)
    pipeline = declare(make_broker(broker_url), Runtime(settings))
    port = _free_port()
    env = {
        **os.environ,
        **_as_env(settings),
        "MEETSYNC_RETRY__SWEEP_EVERY_S": "0",  # nothing may be rescued by the sweeper
        "dramatiq_prom_port": str(port),
        "dramatiq_prom_host": "127.0.0.1",
        "MEETSYNC_READY_FILE": str(tmp_path / "ready"),
    }

    def start_worker(n: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "meetsync"), "worker", "--processes", "1",
             "--threads", "2"],
            env={**env, "dramatiq_prom_db": str(tmp_path / f"prom-{n}")},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip

    first = start_worker(1)
    server.start(create_app(settings, pipeline))
    secret = settings.webhook_secret.get_secret_value()
    try:
        with httpx.Client(
            base_url=server.url, trust_env=False, timeout=10, headers=admin_auth(settings)
        ) as http:
            ids = []
            for n in range(MEETINGS):
                meeting = MEETING.model_copy(update={"meeting_id": f"sigterm-{n}"})
                ids.append(post_meeting(http, secret, meeting).json()["meeting_id"])
            # when: the worker gets SIGTERM while messages are in hand
            deadline = time.monotonic() + 60
            while in_progress(f"http://127.0.0.1:{port}/metrics") < 1:
                assert time.monotonic() < deadline, "no message was ever in progress"
                time.sleep(0.05)
            first.send_signal(signal.SIGTERM)
            _, first_err = first.communicate(timeout=120)
            # expect: it stopped cleanly
            assert first.returncode == 0, first_err.decode()[-3000:]
            assert b"Traceback" not in first_err, first_err.decode()[-3000:]
            stopped = {http.get(f"/v1/meetings/{i}").json()["status"] for i in ids}
            assert stopped != {"planned"}, "the test stopped nothing: the worker had finished"
            # when: a new worker comes up
            second = start_worker(2)
            try:
                finals = [wait_final(http, i, timeout_s=120)["status"] for i in ids]
            finally:
                second.send_signal(signal.SIGTERM)
                _, second_err = second.communicate(timeout=120)
    finally:
        server.stop()
        for process in (first,):
            if process.poll() is None:
                process.kill()
    # expect: every meeting done, and each of its writes made once
    assert finals == ["done"] * MEETINGS
    assert b"Traceback" not in second_err, second_err.decode()[-3000:]
    held = held_by_meetsync(clean_sandbox)
    assert len(held["asana"]) == 2 * MEETINGS
    recaps = [m for m in held["slack"] if (m.get("metadata") or {}).get("event_type")]
    assert len(recaps) == MEETINGS
