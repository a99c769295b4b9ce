"""The image works: built from the package's wheel, which installs and starts on its own.

No Docker engine is needed: the image's content is the wheel, so the wheel is built,
installed in a fresh virtual environment (its dependencies borrowed from this one, the
source tree out of reach) and its `meetsync serve` and `meetsync worker` are run. A room
missing from the package (as `admin/` once was from the image) fails here.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import sysconfig
import time
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
COMPOSE = ROOT / "deploy" / "compose.yaml"
ROOMS = ["cli", "intake", "admin", "workers", "extraction", "mappings", "connectors", "meetsync"]


def stages(dockerfile: str) -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined), split by stage."""
    text = re.sub(r"\\\n", " ", dockerfile)
    found: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            found.append([])
        if found:
            found[-1].append(line)
    return found


def test_the_dockerfile_builds_a_wheel_and_runs_it_pinned_and_as_nobody() -> None:
    built = stages(DOCKERFILE.read_text())
    assert len(built) >= 2, "multi-stage: a build stage and a runtime stage"
    for stage in built:
        image = stage[0].split()[1]
        # an exact version (x.y.z) or a digest: never a moving tag
        assert re.search(r":\d+\.\d+\.\d+|@sha256:[0-9a-f]{64}", image), image
    runtime = built[-1]
    assert any("pip wheel" in i for i in built[0])
    assert any("pip install" in i and "--no-index" in i for i in runtime)
    assert not any(i.upper().startswith("COPY") and " . " in i for i in runtime), "no source"
    users = [i.split()[1] for i in runtime if i.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any(i.upper().startswith("HEALTHCHECK") for i in runtime)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", "tests"} <= set(ignored)


def test_compose_migrates_once_needs_its_secrets_and_offers_rabbitmq() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert services["migrate"]["command"] == ["meetsync", "db", "upgrade"]
    for name in ("api", "worker"):
        service = services[name]
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert service["restart"] == "unless-stopped"
        assert service["read_only"] is True
        env = service["environment"]
        for required in ("MEETSYNC_WEBHOOK_SECRET", "MEETSYNC_ENCRYPTION_KEYS"):
            assert ":?" in env[required], f"{required} must be required"
        assert "MEETSYNC_PUBLIC_BASE_URL" in env
    for name, service in services.items():
        if name != "migrate":
            assert "healthcheck" in service, name
    assert services["rabbitmq"]["profiles"] == ["rabbitmq"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with only the wheel of meetsync installed; dependencies borrowed."""
    where = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(where / "dist"), str(ROOT)],
        check=True, cwd=where, capture_output=True,
    )  # fmt: skip
    wheel = next((where / "dist").glob("meetsync-*.whl"))
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    # the dependencies of this venv, appended after the wheel's own files; a .pth line
    # adds a path without running the .pth files there (this repo's editable install)
    (site / "borrowed-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         "--no-index", str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    return venv


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("MEETSYNC_")}
    # demo mode: the wheel's commands start without the production secrets
    base = {"MEETSYNC_DATABASE_URL": f"sqlite:///{tmp}/image.db", "MEETSYNC_MODE": "demo"}
    return {**keep, **base, **extra}


@pytest.mark.slow
def test_every_room_is_in_the_wheel_and_imported_from_it(installed: Path, tmp_path: Path) -> None:
    code = "import importlib; print('\\n'.join(importlib.import_module(r).__file__ for r in %r))"
    out = subprocess.run(
        [installed / "bin" / "python", "-c", code % ROOMS],
        check=True, capture_output=True, text=True, cwd=tmp_path,
    ).stdout.split()  # fmt: skip
    assert len(out) == len(ROOMS)
    assert all(str(installed) in path for path in out), out


def _running(argv: list[Path | str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _wait_for(url: str, process: subprocess.Popen[bytes], timeout_s: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError((process.stderr.read() if process.stderr else b"").decode())
        try:
            return httpx.get(url, timeout=2, trust_env=False)
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered")


def _stop(process: subprocess.Popen[bytes]) -> str:
    process.terminate()
    _, stderr = process.communicate(timeout=60)
    return stderr.decode()


@pytest.mark.slow
def test_the_installed_wheel_serves_the_api(installed: Path, tmp_path: Path) -> None:
    port = _free_port()
    server = _running(
        [installed / "bin" / "meetsync", "serve", "--port", str(port)], _env(tmp_path), tmp_path
    )
    try:
        alive = _wait_for(f"http://127.0.0.1:{port}/healthz", server)
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5, trust_env=False)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5, trust_env=False)
    finally:
        stderr = _stop(server)
    assert alive.status_code == 200
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok", ready.text
    assert "meetsync_meetings" in metrics.text
    assert "Traceback" not in stderr, stderr[-3000:]


@pytest.mark.slow
@pytest.mark.integration
def test_the_installed_wheel_runs_a_worker(installed: Path, tmp_path: Path) -> None:
    port = _free_port()
    ready_file = tmp_path / "ready"
    env = _env(
        tmp_path,
        MEETSYNC_BROKER_URL=f"redis://127.0.0.1:6379/15?namespace=image-{uuid.uuid4().hex[:8]}",
        MEETSYNC_REDIS_URL="redis://127.0.0.1:6379/15",
        MEETSYNC_READY_FILE=str(ready_file),
        dramatiq_prom_port=str(port),
        dramatiq_prom_host="127.0.0.1",
        dramatiq_prom_db=str(tmp_path / "prom"),
    )
    worker = _running(
        [installed / "bin" / "meetsync", "worker", "--processes", "1", "--queue", "extract"],
        env,
        tmp_path,
    )
    try:
        scraped = _wait_for(f"http://127.0.0.1:{port}/metrics", worker)
        deadline = time.monotonic() + 30
        while not ready_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        became_ready = ready_file.exists()
    finally:
        stderr = _stop(worker)
    assert scraped.status_code == 200
    assert became_ready, stderr[-3000:]
    assert not ready_file.exists(), "a stopping worker is not ready"
    assert "Traceback" not in stderr, stderr[-3000:]
