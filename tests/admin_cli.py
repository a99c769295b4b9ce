"""The `meetsync` CLI run in-process on a temporary SQLite database, for the admin tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cli import app
from meetsync.db.session import session_scope
from meetsync.settings import Settings, get_settings
from sandbox.salesforce.auth import DEFAULTS as SALESFORCE_CREDENTIALS
from sandbox.server import Sandbox
from sandbox.slack import TOKEN as SLACK_TOKEN

ASANA_TOKEN = "sandbox-pat-0123456789"


@dataclass
class Cli:
    """Runs `meetsync …` with MEETSYNC_* pointing at this test's database."""

    monkeypatch: pytest.MonkeyPatch
    database_url: str

    def run(self, *args: str, input: str | None = None) -> Result:
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(app, list(args), input=input)
        finally:
            get_settings.cache_clear()

    def ok(self, *args: str, input: str | None = None) -> str:
        """Stdout of a command that must succeed."""
        result = self.run(*args, input=input)
        assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
        return result.stdout

    def fails(self, *args: str) -> Result:
        result = self.run(*args)
        assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
        return result

    def env(self, name: str, value: str) -> None:
        self.monkeypatch.setenv(name, value)

    def settings(self) -> Settings:
        get_settings.cache_clear()
        try:
            return get_settings()
        finally:
            get_settings.cache_clear()

    def session(self):  # type: ignore[no-untyped-def]
        return session_scope(self.database_url)


def make_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """A migrated empty database and no connections declared in settings."""
    url = f"sqlite:///{tmp_path}/admin.db"
    monkeypatch.setenv("MEETSYNC_DATABASE_URL", url)
    monkeypatch.setenv("MEETSYNC_CONNECTIONS", "{}")
    monkeypatch.setenv("MEETSYNC_PUBLIC_BASE_URL", "http://meetsync.test")
    cli = Cli(monkeypatch, url)
    cli.ok("db", "upgrade")
    return cli


def add_sandbox_connections(cli: Cli, sandbox: Sandbox, org: str = "acme") -> None:
    """The org's three connections, with the credentials the sandbox accepts."""
    sf = SALESFORCE_CREDENTIALS
    cli.ok(
        "connections", "add", f"{org}-salesforce", "--org", org, "--provider", "salesforce",
        "--base-url", sandbox.urls["salesforce"], "--option", f"ca_file={sandbox.ca_file}",
        "--credential", f"client_id={sf['client_id']}",
        "--credential", f"client_secret={sf['client_secret']}",
        "--credential", f"refresh_token={sf['refresh_token']}",
    )  # fmt: skip
    cli.ok(
        "connections", "add", f"{org}-asana", "--org", org, "--provider", "asana",
        "--base-url", sandbox.urls["asana"], "--credential", f"token={ASANA_TOKEN}",
    )  # fmt: skip
    cli.ok(
        "connections", "add", f"{org}-slack", "--org", org, "--provider", "slack",
        "--base-url", sandbox.urls["slack"], "--credential", f"bot_token={SLACK_TOKEN}",
    )  # fmt: skip


SECRETS = [SALESFORCE_CREDENTIALS["client_secret"], SALESFORCE_CREDENTIALS["refresh_token"],
           ASANA_TOKEN, SLACK_TOKEN]  # fmt: skip


def admin_auth(settings: Settings, org: str = "acme") -> dict[str, str]:
    """An Authorization header with a fresh admin token of `org`."""
    from admin.tokens import mint_token

    with session_scope(settings.database_url) as session:
        token = mint_token(session, org).token
    return {"Authorization": f"Bearer {token}"}
