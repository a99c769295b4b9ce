"""The operator's first hour: each friction point of issue 24, as a story that could fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from dotenv import dotenv_values
from sqlalchemy import select
from typer.testing import CliRunner

from admin import replan as replanning
from cli import app
from cli.demo import EXAMPLE_MAPPING
from intake.app import create_app
from intake.client import post_meeting
from intake.serving import BackgroundServer
from meetsync.bootstrap import apply_mapping, seed_demo
from meetsync.db.migrate import upgrade
from meetsync.db.models import Meeting, OpRecord
from meetsync.db.session import session_scope
from meetsync.pipeline_status import meeting_counts, overall_status
from meetsync.settings import get_settings
from sandbox.server import Sandbox
from sandbox.settings_for import settings_for
from tests.admin_cli import Cli, add_sandbox_connections, make_cli
from tests.test_end_to_end import MEETING
from workers.inprocess import InProcessWorkers

MEETSYNC = str(Path(sys.executable).parent / "meetsync")


def meetsync(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed `meetsync` command, as an operator runs it, with only these settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MEETSYNC_")}
    return subprocess.run(
        [MEETSYNC, *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    cli = make_cli(tmp_path, monkeypatch)
    cli.ok("orgs", "create", "acme")
    return cli


# -- infrastructure errors: one line each ----------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        pytest.param(
            ["orgs", "list"],
            {"MEETSYNC_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/meetsync"},
            "PostgreSQL at 127.0.0.1:1 is unreachable (MEETSYNC_DATABASE_URL=",
            id="postgres-down",
        ),
        pytest.param(
            ["orgs", "list"],
            {"MEETSYNC_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:5432/no_such_db_24"},
            "has no database 'no_such_db_24'",
            id="database-missing",
        ),
        pytest.param(
            ["status", "throttles"],
            {
                "MEETSYNC_DATABASE_URL": "sqlite:///x.db",
                "MEETSYNC_REDIS_URL": "redis://127.0.0.1:1/0",
                "MEETSYNC_THROTTLE__BACKEND": "redis",
            },
            "Redis at 127.0.0.1:1 is unreachable (MEETSYNC_REDIS_URL=",
            id="redis-down",
        ),
        pytest.param(
            ["orgs", "list"],
            {},
            "MEETSYNC_DATABASE_URL is not set",
            id="no-environment",
        ),
        pytest.param(
            ["orgs", "list"],
            {"MEETSYNC_DATABASE_URL": "sqlite:///empty.db"},
            "run `meetsync db upgrade`",
            id="not-migrated",
        ),
        pytest.param(
            ["orgs", "list"],
            {"MEETSYNC_DATABASE_URL": "sqlite:///x.db", "MEETSYNC_ENCRYPTION_KEYS": "k1"},
            "MEETSYNC_ENCRYPTION_KEYS cannot be read (JSON expected",
            id="malformed-setting",
        ),
    ],
)  # fmt: skip
def test_unreachable_infrastructure_is_one_line_naming_the_setting(
    tmp_path: Path, args: list[str], env: dict[str, str], expected: str
) -> None:
    # when an operator runs a command against missing or stopped infrastructure
    result = meetsync(*args, cwd=tmp_path, **env)

    # expect one line: what, the setting, how to check; no traceback, no stray SQLite file
    assert result.returncode == 1, result.stderr
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    if not env:
        assert not (tmp_path / "meetsync.db").exists()


def test_a_worker_says_the_broker_is_down_before_starting(tmp_path: Path) -> None:
    # given production settings whose RabbitMQ is not there
    env = init_env(tmp_path)
    env["MEETSYNC_BROKER_URL"] = "amqp://guest:guest@127.0.0.1:1/"

    result = meetsync("worker", "--processes", "1", cwd=tmp_path, **env)

    assert result.returncode == 1
    assert "RabbitMQ at 127.0.0.1:1 is unreachable (MEETSYNC_BROKER_URL=" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


# -- meetsync init ----------------------------------------------------------------------


def init_env(tmp_path: Path, database_url: str = "") -> dict[str, str]:
    """Run `meetsync init` in tmp_path; the settings it wrote."""
    url = database_url or f"sqlite:///{tmp_path}/init.db"
    result = meetsync("init", "--sandbox", "--database-url", url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return {k: v for k, v in dotenv_values(tmp_path / ".env").items() if v is not None}


def test_init_makes_the_secrets_writes_env_and_creates_the_database(
    tmp_path: Path, postgres_url: str
) -> None:
    # given a database that does not exist yet
    import psycopg

    missing = postgres_url + "_init"

    # when an operator runs init
    result = meetsync("init", "--sandbox", "--database-url", missing, cwd=tmp_path)

    # expect real secrets in a private .env, a migrated database, and the next commands
    assert result.returncode == 0, result.stderr
    env = dotenv_values(tmp_path / ".env")
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600
    assert str(env["MEETSYNC_WEBHOOK_SECRET"]).startswith("whsec_")
    Fernet(json.loads(str(env["MEETSYNC_ENCRYPTION_KEYS"]))[0])  # a valid key
    assert len(str(env["MEETSYNC_MEETING_LINK_SECRET"])) >= 32
    assert env["MEETSYNC_PUBLIC_BASE_URL"] == "http://127.0.0.1:8000"
    assert "created and migrated" in result.stdout
    assert "meetsync orgs create" in result.stdout and "meetsync serve" in result.stdout
    # and every later command reads it: production mode is satisfied
    listed = meetsync("orgs", "list", "--json", cwd=tmp_path)
    assert listed.returncode == 0 and json.loads(listed.stdout) == []

    # when init runs again, expect the secrets kept
    again = meetsync("init", cwd=tmp_path)
    assert again.returncode == 0 and "kept .env" in again.stdout
    assert dotenv_values(tmp_path / ".env") == env
    name = missing.rsplit("/", 1)[1]
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- small things -----------------------------------------------------------------------


def test_version_and_an_empty_connection_list_say_something(cli: Cli) -> None:
    assert cli.ok("--version").startswith("meetsync ")
    assert "no connections" in cli.ok("connections", "list")


@pytest.mark.parametrize(
    ("provider", "credentials", "expected"),
    [
        pytest.param("slack", ["token=xoxb-1"], "slack takes the credentials bot_token",
                     id="slack-token"),
        pytest.param("asana", ["pat=1"], "not a asana credential: pat", id="asana-pat"),
        pytest.param("salesforce", ["client_id=a", "refresh_token=b"],
                     "missing: client_secret", id="salesforce-half"),
    ],
)  # fmt: skip
def test_connections_add_names_the_credentials_each_provider_takes(
    cli: Cli, provider: str, credentials: list[str], expected: str
) -> None:
    creds = [x for c in credentials for x in ("--credential", c)]
    result = cli.fails("connections", "add", "c1", "--org", "acme", "--provider", provider, *creds)
    assert expected in result.stderr


def test_adding_an_existing_connection_offers_replace(cli: Cli) -> None:
    args = ["connections", "add", "c1", "--org", "acme", "--provider", "asana"]
    cli.ok(*args, "--credential", "token=one")
    assert "--replace" in cli.fails(*args, "--credential", "token=two").stderr


def test_a_bare_credential_without_a_terminal_says_how_to_give_it(cli: Cli) -> None:
    # given no terminal and nothing piped, when a credential is named without a value
    result = cli.run(
        "connections", "add", "c1", "--org", "acme", "--provider", "asana",
        "--credential", "token", input="",
    )  # fmt: skip
    # expect what to do instead, not a GetPassWarning and "Aborted."
    assert result.exit_code == 1
    assert "no terminal to ask on" in result.stderr and "token=VALUE" in result.stderr


def test_status_json_before_throttles_is_json(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEETSYNC_REDIS_URL", redis_url)
    monkeypatch.setenv("MEETSYNC_THROTTLE__BACKEND", "redis")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["status", "--json", "throttles"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert isinstance(json.loads(result.stdout), list)


def test_status_counts_a_meeting_as_the_api_shows_it(tmp_path: Path) -> None:
    # given meetings whose stored status stopped at `planned`, their ops settled since
    url = f"sqlite:///{tmp_path}/status.db"
    upgrade(url)
    with session_scope(url) as session:
        from meetsync.bootstrap import ensure_org

        ensure_org(session, "acme", "Acme")
        for name, states in {"m1": ["done", "done"], "m2": ["done", "failed"]}.items():
            session.add(
                Meeting(
                    id=name, org_id="acme", external_id=name, title=name, payload={},
                    transcript_hash="x", status="planned",
                )
            )  # fmt: skip
            session.flush()
            for i, state in enumerate(states):
                session.add(
                    OpRecord(
                        key=f"{name}-{i}", org_id="acme", meeting_id=name, connector="asana",
                        connection="c", action="upsert_task", target={}, fields={},
                        payload_hash="h", state=state,
                    )
                )  # fmt: skip
    # expect status to say what GET /v1/meetings/{id} says
    with session_scope(url) as session:
        assert meeting_counts(session) == [("acme", "done", 1), ("acme", "partial", 1)]
    assert overall_status("planned", Counter({"done": 2})) == "done"


# -- mappings apply checks the providers ------------------------------------------------


def bad_mapping(tmp_path: Path) -> Path:
    """The example mapping with a Task field Salesforce does not have."""
    body = EXAMPLE_MAPPING.read_text().replace(
        "      Priority: Normal\n", "      Priority: Normal\n      Meeting_Score__c: 5\n", 1
    )
    assert "Meeting_Score__c" in body
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    return path


def test_mappings_apply_checks_the_providers_unless_offline(
    cli: Cli, clean_sandbox: Sandbox, tmp_path: Path
) -> None:
    # given the org's sandbox connections and a mapping naming a field Salesforce lacks
    cli.env("MEETSYNC_ENDPOINTS__CA_FILES", json.dumps([clean_sandbox.ca_file]))
    add_sandbox_connections(cli, clean_sandbox)
    path = bad_mapping(tmp_path)

    # when it is applied, expect it refused at once, naming the field
    refused = cli.fails("mappings", "apply", str(path))
    assert "Meeting_Score__c" in refused.stderr
    assert "no mapping" in cli.ok("orgs", "list")

    # when it is applied --offline, expect it stored, saying what was not checked
    stored = cli.run("mappings", "apply", str(path), "--offline")
    assert stored.exit_code == 0, stored.stderr
    assert "not checked against the providers" in stored.stderr
    assert "picklist values" in stored.stderr


# -- replan after a mapping fix ---------------------------------------------------------


@pytest.mark.slow
def test_replan_after_a_mapping_fix_clears_the_stale_failure(
    clean_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a meeting pushed through a mapping naming a field Salesforce lacks
    url = f"sqlite:///{tmp_path}/replan.db"
    server = BackgroundServer()
    settings = settings_for(
        clean_sandbox, database_url=url, broker_url="stub", public_base_url=server.url
    )
    upgrade(url)
    with session_scope(url) as session:
        seed_demo(session, settings, EXAMPLE_MAPPING)
        apply_mapping(session, "acme", bad_mapping(tmp_path).read_text())
    workers = InProcessWorkers(settings, threads=2)
    pipeline = workers.start()
    server.start(create_app(settings, pipeline))
    try:
        assert settings.webhook_secret is not None
        with httpx.Client(base_url=server.url, trust_env=False) as http:
            meeting_id = post_meeting(
                http, settings.webhook_secret.get_secret_value(), MEETING
            ).json()["meeting_id"]
        workers.join(timeout_s=120)
        with session_scope(url) as session:
            failed = session.scalars(
                select(OpRecord).where(
                    OpRecord.meeting_id == meeting_id, OpRecord.state == "failed"
                )
            ).all()
            assert [row.connector for row in failed] == ["salesforce"]
            assert "Meeting_Score__c" in (failed[0].last_error or "")
            key = failed[0].key
            # when the mapping is fixed
            apply_mapping(session, "acme", EXAMPLE_MAPPING.read_text())

        # expect `dlq retry` to say that its payload is the old mapping's
        from cli.dlq import _planned_with_older_mappings

        with session_scope(url) as session:
            row = session.get(OpRecord, key)
            assert _planned_with_older_mappings(session, [row]) == {key: meeting_id}  # type: ignore[list-item]

        # and the operator looks first (a dry run, through the CLI)
        monkeypatch.setenv("MEETSYNC_DATABASE_URL", url)
        get_settings.cache_clear()
        try:
            dry = CliRunner().invoke(app, ["meetings", "replan", meeting_id])
        finally:
            get_settings.cache_clear()
        assert dry.exit_code == 0, dry.output
        assert f"clears {key[:12]}" in dry.stdout and "dry run: nothing written" in dry.stdout
        with session_scope(url) as session:
            assert session.get(OpRecord, key).state == "failed"  # type: ignore[union-attr]

        # then replans for real
        with session_scope(url) as session:
            report = replanning.replan(session, settings, [meeting_id], apply=True)
        assert report.meetings[0].cleared and key in report.meetings[0].cleared
        pipeline.enqueue_pushes(report.planned)
        workers.join(timeout_s=120)
    finally:
        server.stop()
        workers.stop()

    # expect the op written with the current mapping, its stale reason gone
    with session_scope(url) as session:
        row = session.get(OpRecord, key)
        assert row is not None and row.state == "done" and row.last_error is None
        states = Counter(
            r.state
            for r in session.scalars(select(OpRecord).where(OpRecord.meeting_id == meeting_id))
        )
    assert set(states) == {"done"}


# -- webhook send -----------------------------------------------------------------------


def test_webhook_send_signs_like_the_server_or_says_the_secrets_differ(
    clean_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_end_to_end import embedded_stack

    meeting_file = tmp_path / "meeting.json"
    meeting_file.write_text(MEETING.model_dump_json())
    with embedded_stack(clean_sandbox, f"sqlite:///{tmp_path}/send.db") as (settings, url):
        assert settings.webhook_secret is not None
        monkeypatch.setenv("MEETSYNC_PUBLIC_BASE_URL", url)

        def send(secret: str, *extra: str) -> object:
            monkeypatch.setenv("MEETSYNC_WEBHOOK_SECRET", secret)
            get_settings.cache_clear()
            try:
                return CliRunner().invoke(app, ["webhook", "send", str(meeting_file), *extra])
            finally:
                get_settings.cache_clear()

        wrong = send("whsec_" + "d3Jvbmc=" * 4)
        accepted = send(settings.webhook_secret.get_secret_value(), "--wait", "90")

    assert wrong.exit_code == 1  # type: ignore[attr-defined]
    assert "401 bad_signature" in wrong.stderr  # type: ignore[attr-defined]
    assert "MEETSYNC_WEBHOOK_SECRET differs" in wrong.stderr  # type: ignore[attr-defined]
    assert accepted.exit_code == 0, accepted.output  # type: ignore[attr-defined]
    assert "202 accepted" in accepted.stdout  # type: ignore[attr-defined]
    assert "final state: done" in accepted.stdout  # type: ignore[attr-defined]


def test_salesforce_without_ca_file_says_which_option_trusts_the_sandbox(
    cli: Cli, sandbox: Sandbox
) -> None:
    # given the sandbox's Salesforce (self-signed TLS) added without its certificate
    from sandbox.salesforce.auth import DEFAULTS as SF

    cli.ok(
        "connections", "add", "sf", "--org", "acme", "--provider", "salesforce",
        "--base-url", sandbox.urls["salesforce"],
        *[x for k, v in SF.items() for x in ("--credential", f"{k}={v}")],
    )  # fmt: skip

    # when it is tested, expect the option that fixes it, not an SSLError chain
    result = cli.fails("connections", "test", "sf")
    assert "ca_file" in result.stdout and "not trusted" in result.stdout
    assert "SSLError" not in result.stdout and "Traceback" not in result.stdout


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_the_demo_at_80_columns_cuts_no_url_explains_its_failure_and_cleans_up(
    tmp_path: Path,
) -> None:
    # when the demo runs in an 80-column terminal
    result = meetsync("demo", cwd=tmp_path, COLUMNS="80", TMPDIR=str(tmp_path))

    # expect it to finish, every pushed URL whole, the one failure explained as intended
    assert result.returncode == 0, result.stderr[-2000:]
    pushed = [line for line in result.stdout.splitlines() if "https://" in line]
    assert pushed and not [line for line in pushed if "…" in line]
    assert "intended: the sandbox holds no open opportunity" in result.stdout
    # and no demo folder left behind
    assert not list(tmp_path.glob("meetsync-demo-*"))


def test_json_is_honoured_by_the_commands_that_change_things(cli: Cli, tmp_path: Path) -> None:
    assert json.loads(cli.ok("orgs", "create", "globex", "--json")) == {
        "id": "globex", "name": "globex"
    }  # fmt: skip
    added = json.loads(
        cli.ok("connections", "add", "g-asana", "--org", "globex", "--provider", "asana",
               "--credential", "token=secret-value-9", "--json")
    )  # fmt: skip
    assert added["credentials"] == ["token"] and "secret-value-9" not in json.dumps(added)
    broken = tmp_path / "broken.yaml"
    broken.write_text("org: acme\ndestinations: [{connector: asana}]\n")
    result = cli.run("mappings", "validate", str(broken), "--json")
    assert result.exit_code == 1
    problems = json.loads(result.stdout)["problems"]
    assert problems and all(p["path"] is not None for p in problems)


def test_help_shows_no_type_beside_a_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    shown = CliRunner().invoke(app, ["status", "--help"]).output
    assert "--json" in shown and "--help" in shown and "<bool>" not in shown


def test_status_throttles_at_80_columns_cuts_no_bucket_name(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connectors.base import Limits
    from workers.throttle.buckets import Ask
    from workers.throttle.redis import RedisThrottle

    # given a bucket with a long connection name, and an 80-column terminal
    ask = Ask("asana:acme-customer-success-asana", Limits(rate=10, burst=10, concurrency=8))
    throttle = RedisThrottle.from_url(redis_url)
    decision = throttle.acquire(ask)
    throttle.release(ask, decision.lease)
    monkeypatch.setenv("MEETSYNC_REDIS_URL", redis_url)
    monkeypatch.setenv("MEETSYNC_THROTTLE__BACKEND", "redis")
    monkeypatch.setenv("COLUMNS", "80")
    get_settings.cache_clear()
    try:
        shown = CliRunner().invoke(app, ["status", "throttles"]).output
    finally:
        get_settings.cache_clear()

    # expect the name whole, if folded, and no ellipsis
    assert "…" not in shown
    column = "".join(
        line.split("│")[1].strip() for line in shown.splitlines() if line.startswith("│")
    )
    assert "asana:acme-customer-success-asana" in column


def test_a_new_payload_gives_a_failed_op_a_new_attempt(tmp_path: Path) -> None:
    # given an op that failed, with its reason
    from connectors.base import Op
    from workers import ledger

    url = f"sqlite:///{tmp_path}/ledger.db"
    upgrade(url)
    op = Op(
        key="k1", org_id="acme", meeting_id="m1", connector="salesforce", connection="c",
        action="upsert", target={"object": "Task"}, fields={"Bogus__c": 1}, payload_hash="old",
    )  # fmt: skip
    with session_scope(url) as session:
        from meetsync.bootstrap import ensure_org

        ensure_org(session, "acme", "Acme")
        session.add(
            Meeting(id="m1", org_id="acme", external_id="m1", title="m", payload={},
                    transcript_hash="x", status="planned")
        )  # fmt: skip
        session.flush()
        ledger.record_plan(session, "m1", [op], 1)
        row = session.get(OpRecord, "k1")
        assert row is not None
        row.state, row.last_error = "failed", "INVALID_FIELD: No such column 'Bogus__c'"

    # when a fixed mapping plans it again with another payload (a re-sent webhook)
    fixed = op.model_copy(update={"fields": {"Subject": "x"}, "payload_hash": "new"})
    with session_scope(url) as session:
        to_push = ledger.record_plan(session, "m1", [fixed], 2)
        row = session.get(OpRecord, "k1")
        # expect it back in line, the stale reason gone
        assert row is not None and [r.key for r in to_push] == ["k1"]
        assert row.state == "planned" and row.last_error is None

    # and the same payload again leaves a failure alone (that is `dlq retry`'s to decide)
    with session_scope(url) as session:
        row = session.get(OpRecord, "k1")
        assert row is not None
        row.state, row.last_error = "failed", "UNABLE_TO_LOCK_ROW"
        assert ledger.record_plan(session, "m1", [fixed], 2) == []
        assert row.state == "failed"


def test_webhook_send_to_nothing_says_what_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    meeting_file = tmp_path / "meeting.json"
    meeting_file.write_text(MEETING.model_dump_json())
    monkeypatch.setenv("MEETSYNC_PUBLIC_BASE_URL", "http://127.0.0.1:1")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["webhook", "send", str(meeting_file)])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "nothing answers at http://127.0.0.1:1" in result.stderr
    assert "meetsync serve" in result.stderr


def test_init_against_a_stopped_postgres_names_it_in_one_line(tmp_path: Path) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:1/meetsync"
    result = meetsync("init", "--database-url", url, cwd=tmp_path)
    assert result.returncode == 1
    assert "PostgreSQL at 127.0.0.1:1 is unreachable" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


# commands whose output is JSON already, a file's text, or a long-running server
NO_JSON_FLAG = {
    "serve", "worker", "sandbox", "demo",  # servers and the guided tour
    "config show", "mappings schema", "dlq show",  # print JSON already
    "mappings show",  # prints the stored YAML itself
    "eval",  # --json FILE writes the full report
}  # fmt: skip


def test_every_command_takes_json() -> None:
    import typer.main

    def leaves(group: object, prefix: str = "") -> list[tuple[str, object]]:
        found = []
        for name, command in getattr(group, "commands", {}).items():
            path = f"{prefix} {name}".strip()
            found += leaves(command, path) if hasattr(command, "commands") else [(path, command)]
        return found

    root = typer.main.get_command(app)
    missing = [
        path
        for path, command in leaves(root)
        if path not in NO_JSON_FLAG and not any("--json" in p.opts for p in command.params)  # type: ignore[attr-defined]
    ]
    assert missing == []
    # the status group's own flag counts for its subcommands
    assert any("--json" in p.opts for p in root.commands["status"].params)  # type: ignore[attr-defined]
