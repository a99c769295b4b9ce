"""The README's "From the demo to production" path, run as a newcomer would type it.

Every fenced `sh` block of the section runs, in order, in one bash script, in a fresh
directory (the repository's `mappings/` and `meetsync/` linked in, as a clone has them),
against a fresh PostgreSQL database and a Redis namespace of its own. Only the ports
differ from the README's (free ones, so the test runs beside anything else): the test
says where they are through the documented `MEETSYNC_*` variables, which win over `.env`.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## From the demo to production"
# the README's ports: the sandbox's four emulators, then the API
README_PORTS = [8701, 8702, 8703, 8704, 8000]


def readme_commands() -> list[str]:
    """The section's fenced `sh` blocks, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end != -1 else None]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def script_of(blocks: list[str], ports: dict[int, int], sandbox_config: Path) -> str:
    """One bash script: the blocks with the ports swapped, waiting for each server it starts."""
    lines = [
        "set -euo pipefail",
        "trap 'echo \"README command failed ($?): $BASH_COMMAND\" >&2' ERR",
        "wait_port() { for _ in $(seq 1 120); do (echo > /dev/tcp/127.0.0.1/$1) 2>/dev/null"
        ' && return 0; sleep 0.5; done; echo "port $1 never opened" >&2; return 1; }',
    ]
    for block in blocks:
        for line in block.splitlines():
            for old, new in ports.items():
                line = re.sub(rf"127\.0\.0\.1:{old}\b", f"127.0.0.1:{new}", line)
                line = re.sub(rf"--port {old}\b", f"--port {new}", line)
            if line.strip() == "meetsync sandbox &":
                line = f"meetsync sandbox --config {sandbox_config} &"
                lines += [line, f"wait_port {ports[8704]}"]
                continue
            lines.append(line)
            served = re.match(r"meetsync serve --port (\d+) &", line.strip())
            if served:
                lines.append(f"wait_port {served.group(1)}")
    return "\n".join(lines) + "\n"


def test_the_readme_section_has_the_documented_steps() -> None:
    # given the section, expect every step a newcomer needs, in the order they need it
    joined = "\n".join(readme_commands())
    steps = [
        "meetsync sandbox &",
        "meetsync init --sandbox",
        "meetsync orgs create acme",
        "meetsync connections add acme-salesforce",
        "meetsync mappings apply",
        "meetsync serve",
        "meetsync worker",
        "meetsync webhook send",
        "meetsync status",
    ]
    positions = [joined.index(step) for step in steps]
    assert positions == sorted(positions)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_newcomer_following_the_readme_ends_with_a_meeting_done(
    tmp_path: Path, postgres_url: str
) -> None:
    # given a fresh directory with what a clone holds, a fresh database, free ports
    for name in ("mappings", "meetsync"):
        (tmp_path / name).symlink_to(ROOT / name)
    chosen = dict(zip(README_PORTS, free_ports(len(README_PORTS)), strict=True))
    names = ["salesforce", "asana", "slack", "openai"]
    config = tmp_path / "sandbox-ports.yaml"
    pairs = zip(names, README_PORTS[:4], strict=True)
    sandbox_ports = ", ".join(f"{n}: {chosen[p]}" for n, p in pairs)
    config.write_text(f"ports: {{{sandbox_ports}}}\n")
    script = tmp_path / "readme.sh"
    script.write_text(script_of(readme_commands(), chosen, config))
    hosts = [f"127.0.0.1:{chosen[p]}" for p in README_PORTS[:4]]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MEETSYNC_") and "PROXY" not in k.upper()
    }
    env.update(
        PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        MEETSYNC_DATABASE_URL=postgres_url,
        MEETSYNC_REDIS_URL="redis://127.0.0.1:6379/13",
        MEETSYNC_BROKER_URL=f"redis://127.0.0.1:6379/13?namespace=readme-{uuid.uuid4().hex[:8]}",
        MEETSYNC_PUBLIC_BASE_URL=f"http://127.0.0.1:{chosen[8000]}",
        MEETSYNC_ENDPOINTS__ALLOWED_HOSTS="[" + ", ".join(f'"{h}"' for h in hosts) + "]",
        MEETSYNC_LLM__BASE_URL=f"http://127.0.0.1:{chosen[8704]}/v1",
        COLUMNS="100",
    )

    # when the README's commands run, top to bottom
    started = time.monotonic()
    log = tmp_path / "readme.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            ["bash", "-x", str(script)],
            cwd=tmp_path,
            env={**env, "PS4": "+ [$SECONDS s] "},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        process.wait(timeout=500)
    finally:
        # the sandbox, the API and the workers it left in the background
        os.killpg(process.pid, signal.SIGTERM)
        time.sleep(1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    took = time.monotonic() - started
    output = log.read_text()

    # expect every command to succeed and the meeting done, in the API and in status
    assert process.returncode == 0, (process.returncode, output[-4000:])
    assert "final state: done" in output, output[-4000:]
    assert re.search(r"acme\s*│\s*done\s*│\s*1", output), output[-3000:]
    assert (tmp_path / ".env").stat().st_mode & 0o077 == 0
    print(f"README path: {took:.0f}s")
