"""Outside demo mode nothing runs on public secrets, and nothing shows a credential."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from cli.serve import prepare
from meetsync.db.models import Connection
from meetsync.logging import MaskCredentials
from meetsync.settings import get_settings
from tests.admin_cli import Cli, make_cli


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    return make_cli(tmp_path, monkeypatch)


@pytest.mark.parametrize(
    "command",
    [pytest.param(["serve", "--port", "0"], id="serve"), pytest.param(["worker"], id="worker")],
)
def test_production_refuses_to_start_without_its_secrets(
    tmp_path: Path, command: list[str]
) -> None:
    # given production mode with no webhook secret, no encryption key, no link secret
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEETSYNC_")}
    env |= {
        "MEETSYNC_MODE": "production",
        "MEETSYNC_DATABASE_URL": f"sqlite:///{tmp_path}/prod.db",
        "MEETSYNC_BROKER_URL": "redis://127.0.0.1:6379/15",
    }

    # when the API or the workers are started
    result = subprocess.run(
        [sys.executable, "-c", "import cli; cli.main()", *command],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    # expect a refusal naming each missing setting and how to make it; nothing served
    assert result.returncode == 2, (result.stdout, result.stderr)
    for name in (
        "MEETSYNC_WEBHOOK_SECRET",
        "MEETSYNC_ENCRYPTION_KEYS",
        "MEETSYNC_MEETING_LINK_SECRET",
    ):
        assert name in result.stderr
    assert "Fernet.generate_key()" in result.stderr and "whsec_" in result.stderr


def test_production_has_no_demo_secret_and_no_sandbox_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MEETSYNC_MODE", "production")
    monkeypatch.delenv("MEETSYNC_CONNECTIONS", raising=False)
    get_settings.cache_clear()
    try:
        settings = get_settings()
    finally:
        get_settings.cache_clear()
    assert settings.webhook_secret is None and settings.encryption_keys == []
    assert settings.connections == {} and settings.endpoints.allowed_hosts == []


def test_declared_connections_are_seeded_once_and_never_overwritten(cli: Cli) -> None:
    # given a connection declared in settings, seeded by a first start
    declared = {
        "acme-asana": {
            "provider": "asana",
            "org_id": "acme",
            "base_url": "http://127.0.0.1:8702/api/1.0",
            "credentials": {"token": "declared-token"},
        }
    }
    cli.env("MEETSYNC_CONNECTIONS", json.dumps(declared))
    prepare(cli.settings())

    # when an admin replaces it through the CLI, and the service restarts
    cli.ok(
        "connections", "add", "acme-asana", "--org", "acme", "--provider", "asana",
        "--base-url", "http://127.0.0.1:9999/api/1.0", "--credential", "token=admins-token",
        "--replace",
    )  # fmt: skip
    prepare(cli.settings())

    # expect the admin's connection as the admin left it
    from meetsync.crypto import unseal

    with cli.session() as session:
        row = session.get(Connection, "acme-asana")
        assert row is not None
        assert row.base_url == "http://127.0.0.1:9999/api/1.0"
        assert unseal(cli.settings(), row.credentials) == {"token": "admins-token"}


def test_config_show_masks_every_credential(cli: Cli) -> None:
    # given passwords in every URL the settings hold
    key = Fernet.generate_key().decode()
    cli.env("MEETSYNC_DATABASE_URL", "postgresql+psycopg://meetsync:pg-pass-1@db:5432/meetsync")
    cli.env("MEETSYNC_BROKER_URL", "amqp://guest:amqp-pass-2@rabbit:5672//")
    cli.env("MEETSYNC_REDIS_URL", "redis://:redis-pass-3@redis:6379/0")
    cli.env("MEETSYNC_NOTES_API__BASE_URL", "https://notes.example/api?password=notes-pass-4")
    cli.env("MEETSYNC_ENCRYPTION_KEYS", json.dumps([key]))
    cli.env(
        "MEETSYNC_CONNECTIONS",
        json.dumps(
            {
                "x": {
                    "provider": "asana",
                    "base_url": "https://user:conn-pass-5@app.asana.com/api/1.0?token=conn-pass-6",
                    "credentials": {"token": "conn-pass-7"},
                }
            }
        ),
    )

    # when the settings are shown
    shown = cli.ok("config", "show")

    # expect none of the secrets, and the rest of each URL kept
    for secret in ("pg-pass-1", "amqp-pass-2", "redis-pass-3", "notes-pass-4", "conn-pass-"):
        assert secret not in shown
    assert key not in shown
    assert "meetsync:**********@db:5432" in shown and "rabbit:5672" in shown


def test_logs_and_tracebacks_mask_credentials() -> None:
    # given a log record whose message and traceback carry a database URL with its password
    try:
        raise ConnectionError("cannot reach postgresql://app:tb-secret@db/meetsync")
    except ConnectionError:
        import sys

        record = logging.LogRecord(
            "meetsync", logging.ERROR, __file__, 1, "connecting to %s failed",
            ("redis://:msg-secret@redis:6379/0",), sys.exc_info(),
        )  # fmt: skip

    # when it passes the filter every handler carries
    MaskCredentials().filter(record)
    text = logging.Formatter().format(record)

    # expect neither password, and the hosts kept
    assert "msg-secret" not in text and "tb-secret" not in text
    assert "redis:6379" in text and "@db/meetsync" in text


def test_connections_and_status_never_show_a_proxy_password(cli: Cli) -> None:
    # given a proxy with a password in its URL, allowed by the operator, and a paused
    # connection whose reason quotes a URL with a password
    proxy = "http://meetsync:proxy-pass-8@proxy.internal:3128"
    cli.env("MEETSYNC_ENDPOINTS__PROXIES", json.dumps([proxy]))
    cli.ok("orgs", "create", "acme")
    cli.ok(
        "connections", "add", "acme-asana", "--org", "acme", "--provider", "asana",
        "--option", f"proxy={proxy}", "--credential", "token=t-123456",
    )  # fmt: skip
    with cli.session() as session:
        row = session.get(Connection, "acme-asana")
        assert row is not None
        row.status, row.status_reason = "paused", f"cannot reach {proxy}"

    # when the connections and the pipeline's status are shown
    listed = cli.ok("connections", "list", "--json")
    status = cli.ok("status", "--json")

    # expect the proxy, without its password, in both
    assert "proxy-pass-8" not in listed + status
    assert "proxy.internal:3128" in listed and "proxy.internal:3128" in status
