"""`scripts/services`, which `make test` runs first: start what is down, or say what to install."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "services"
TOOLS = ["bash", "seq", "sleep", "ls", "sort", "tail", "sed", "mkdir"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(
    tmp_path: Path, servers: list[str]
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """The script on free ports, with only these server binaries on the PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in TOOLS + servers:
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    ports = {
        "MEETSYNC_TEST_PG_PORT": str(free_port()),
        "MEETSYNC_TEST_REDIS_PORT": str(free_port()),
        "MEETSYNC_TEST_AMQP_PORT": str(free_port()),
    }
    env = {"PATH": str(bin_dir), "TMPDIR": str(tmp_path), **ports}
    result = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120
    )
    return result, ports


def test_nothing_installed_says_exactly_what_to_install(tmp_path: Path) -> None:
    result, _ = run(tmp_path, [])
    assert result.returncode == 1
    for name in ("PostgreSQL", "Redis", "RabbitMQ"):
        assert name in result.stderr and "apt install" in result.stderr
    assert result.stdout == ""


@pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server is not installed")
def test_a_stopped_redis_is_started_and_said_in_one_line(tmp_path: Path) -> None:
    result, ports = run(tmp_path, ["redis-server"])
    port = int(ports["MEETSYNC_TEST_REDIS_PORT"])
    try:
        assert result.stdout.strip() == "scripts/services: started Redis on 127.0.0.1"
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"PING\r\n")
            assert conn.recv(16).startswith(b"+PONG")
        # PostgreSQL and RabbitMQ are not installed here: said, and the exit code says so
        assert result.returncode == 1 and "Redis" not in result.stderr
    finally:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"SHUTDOWN NOSAVE\r\n")
