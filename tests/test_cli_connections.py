"""`meetsync connections`: sealed credentials, identity checks on the sandbox, removal, rotation."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from meetsync.db.models import Connection
from sandbox.server import Sandbox
from tests.admin_cli import SECRETS, Cli, add_sandbox_connections, make_cli


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    cli = make_cli(tmp_path, monkeypatch)
    cli.ok("orgs", "create", "acme")
    return cli


def test_credentials_are_sealed_and_never_shown(cli: Cli, sandbox: Sandbox) -> None:
    # given the org's three connections, added with their secrets
    add_sandbox_connections(cli, sandbox)

    # when they are listed, as text and as JSON
    listed = cli.ok("connections", "list") + cli.ok("connections", "list", "--json")

    # expect no secret in the database column or in any output, but the key names shown
    with cli.session() as session:
        stored = " ".join(c.credentials for c in session.scalars(select(Connection)))
    for secret in SECRETS:
        assert secret not in stored and secret not in listed
    assert "client_id,client_secret,refresh_token" in listed and "bot_token" in listed


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param(
            "acme-salesforce",
            ["ok   sign in:", "ok   user: integration@acme.io", "ok   limits: DailyApiRequests"],
            id="salesforce",
        ),
        pytest.param(
            "acme-asana",
            ["ok   users/me: Dana Reyes <dana@acme.io>", "ok   workspaces: Acme Analytics"],
            id="asana",
        ),
        pytest.param(
            "acme-slack",
            ["ok   auth.test: bot meetsync", "ok   channels: sees 5 channels; member of"],
            id="slack",
        ),
    ],
)
def test_a_working_connection_says_who_it_is(
    cli: Cli, sandbox: Sandbox, name: str, expected: list[str]
) -> None:
    # given a connection with good credentials
    add_sandbox_connections(cli, sandbox)

    # when it is tested
    output = cli.ok("connections", "test", name)

    # expect each identity probe to pass, and the verdict
    for line in expected:
        assert line in output, output
    assert output.strip().endswith("works")


@pytest.mark.parametrize(
    ("provider", "credential", "failure"),
    [
        pytest.param(
            "salesforce", "refresh_token=wrong-refresh-token", "FAIL sign in: AuthExpired",
            id="salesforce",
        ),
        pytest.param("slack", "bot_token=xoxb-wrong-token", "FAIL auth.test: AuthExpired",
                     id="slack"),
    ],
)  # fmt: skip
def test_a_broken_connection_says_what_fails_without_the_secret(
    cli: Cli, sandbox: Sandbox, provider: str, credential: str, failure: str
) -> None:
    # given a connection whose credential the provider refuses
    extra = ["--option", f"ca_file={sandbox.ca_file}"] if provider == "salesforce" else []
    base = (
        ["--credential", "client_id=meetsync-sandbox-client",
         "--credential", "client_secret=meetsync-sandbox-secret"]
        if provider == "salesforce" else []
    )  # fmt: skip
    cli.ok(
        "connections", "add", "bad", "--org", "acme", "--provider", provider,
        "--base-url", sandbox.urls[provider], "--credential", credential, *base, *extra,
    )  # fmt: skip

    # when it is tested
    result = cli.fails("connections", "test", "bad")

    # expect the failing probe named, the verdict, and the secret nowhere
    assert failure in result.stdout and "bad (" in result.stdout
    assert result.stdout.strip().endswith("does not work")
    assert credential.split("=", 1)[1] not in result.stdout


def test_a_secret_typed_at_the_prompt_is_stored_unseen(cli: Cli, sandbox: Sandbox) -> None:
    # given a credential given by name only, its value typed at the hidden prompt
    output = cli.ok(
        "connections", "add", "acme-asana", "--org", "acme", "--provider", "asana",
        "--base-url", sandbox.urls["asana"], "--credential", "token",
        input="sandbox-pat-0123456789\n",  # a token the sandbox workspace issued
    )  # fmt: skip

    # expect the connection to work and the secret never echoed
    assert "sandbox-pat-0123456789" not in output
    assert "ok   users/me" in cli.ok("connections", "test", "acme-asana")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--provider", "hubspot"], "no connector named 'hubspot'", id="provider"),
        pytest.param(["--provider", "asana", "--org", "globex"], "no org 'globex'", id="org"),
    ],
)
def test_a_connection_needs_a_known_provider_and_org(
    cli: Cli, args: list[str], message: str
) -> None:
    base = ["connections", "add", "x", "--credential", "token=t"]
    if "--org" not in args:
        base += ["--org", "acme"]
    assert message in cli.fails(*base, *args).stderr


def test_a_connection_in_use_is_removed_only_when_forced(
    cli: Cli, sandbox: Sandbox, tmp_path: Path
) -> None:
    # given connections and a mapping that writes through acme-slack
    add_sandbox_connections(cli, sandbox)
    mapping = Path(__file__).parents[1] / "mappings" / "examples" / "acme.yaml"
    cli.ok("mappings", "apply", str(mapping))

    # when it is removed, then removed with --force
    refused = cli.fails("connections", "remove", "acme-slack")
    cli.ok("connections", "remove", "acme-slack", "--force")

    # expect the first refused naming the mapping version, the second done
    assert "mapping version 1 of acme writes through 'acme-slack'" in refused.stderr
    assert "acme-slack" not in cli.ok("connections", "list")
    assert (
        "no connection named 'acme-slack'" in cli.fails("connections", "test", "acme-slack").stderr
    )


def test_rotated_keys_reseal_every_connection(cli: Cli, sandbox: Sandbox) -> None:
    # given connections sealed under key A
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    cli.env("MEETSYNC_ENCRYPTION_KEYS", f'["{old}"]')
    add_sandbox_connections(cli, sandbox)

    # when key B is put first and everything is re-sealed, then key A is retired
    cli.env("MEETSYNC_ENCRYPTION_KEYS", f'["{new}", "{old}"]')
    assert "re-encrypted 3 connection(s)" in cli.ok("connections", "rotate-keys")
    cli.env("MEETSYNC_ENCRYPTION_KEYS", f'["{new}"]')

    # expect the connections still readable and working under key B alone
    assert "bot_token" in cli.ok("connections", "list")
    assert cli.ok("connections", "test", "acme-slack").strip().endswith("works")
