"""`meetsync init`: secrets made, a commented `.env` written, the database created and migrated.

What an operator would otherwise assemble by hand from the Security section: a Standard
Webhooks secret, a Fernet key, a meeting-link secret, the public URL recaps link to, and
(with `--sandbox`) the endpoints of the local emulators. An existing `.env` is kept as it
is, never written over without `--force`, so running init twice loses no key.
"""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer
from cryptography.fernet import Fernet
from dotenv import dotenv_values
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cli.infrastructure import explain
from meetsync.masking import mask_text
from meetsync.settings import SANDBOX_CERT, get_settings

DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/meetsync"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
# the ports `meetsync sandbox` listens on (sandbox.server.DEFAULT_PORTS)
SANDBOX_HOSTS = ["127.0.0.1:8701", "127.0.0.1:8702", "127.0.0.1:8703", "127.0.0.1:8704"]


def webhook_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def render_env(
    *,
    database_url: str,
    redis_url: str,
    broker_url: str,
    public_base_url: str,
    sandbox: bool,
) -> str:
    """The text of a commented `.env` with fresh secrets."""
    key = Fernet.generate_key().decode()
    lines = [
        "# meetsync settings, written by `meetsync init`. Keep this file private: it holds",
        "# the secrets below. Any MEETSYNC_* variable in the environment wins over this file.",
        "",
        "# PostgreSQL: meetings, the op ledger, mappings, sealed credentials",
        f"MEETSYNC_DATABASE_URL={database_url}",
        "# the broker between the API and the workers (redis://…?namespace=x or amqp://…)",
        f"MEETSYNC_BROKER_URL={broker_url}",
        "# throttle buckets and cooldowns shared by every worker",
        f"MEETSYNC_REDIS_URL={redis_url}",
        "# where this service is reachable: status and recap links start with it",
        f"MEETSYNC_PUBLIC_BASE_URL={public_base_url}",
        "",
        "# signs webhooks; give the same value to the notes pipeline (Standard Webhooks)",
        f"MEETSYNC_WEBHOOK_SECRET={webhook_secret()}",
        "# Fernet keys sealing connection credentials, newest first; to rotate, put a new",
        "# key first, run `meetsync connections rotate-keys`, then drop the old one",
        f"MEETSYNC_ENCRYPTION_KEYS='{json.dumps([key])}'",
        "# signs the meeting links put in recaps, tasks and CRM records",
        f"MEETSYNC_MEETING_LINK_SECRET={secrets.token_urlsafe(32)}",
        "",
    ]
    if sandbox:
        lines += [
            "# the local emulators (`meetsync sandbox`): their ports and TLS certificate may",
            "# receive credentials; remove these four lines before using real providers",
            f"MEETSYNC_ENDPOINTS__ALLOWED_HOSTS='{json.dumps(SANDBOX_HOSTS)}'",
            f"MEETSYNC_ENDPOINTS__CA_FILES='{json.dumps([str(SANDBOX_CERT)])}'",
            "MEETSYNC_LLM__BASE_URL=http://127.0.0.1:8704/v1",
            "MEETSYNC_LLM__API_KEY=sandbox-key",
        ]
    else:
        lines += [
            "# the LLM: any OpenAI-compatible endpoint",
            "MEETSYNC_LLM__BASE_URL=https://api.openai.com/v1",
            "# MEETSYNC_LLM__API_KEY=sk-...",
            '# MEETSYNC_LLM__MODELS=\'{"action_items": "gpt-4o-mini", "crm_fields": "gpt-4o"}\'',
        ]
    return "\n".join(lines) + "\n"


def create_database(url: str) -> bool:
    """Create a PostgreSQL database if it is missing; whether it was created."""
    target = make_url(url)
    if not target.drivername.startswith("postgresql") or not target.database:
        return False
    maintenance = target.set(database="postgres")
    engine = create_engine(maintenance, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
            ).first()
            if exists:
                return False
            quoted = target.database.replace('"', '""')
            conn.execute(text(f'CREATE DATABASE "{quoted}"'))
            return True
    finally:
        engine.dispose()


def init(
    env_file: Annotated[Path, typer.Option(help="where to write the settings")] = Path(".env"),
    database_url: Annotated[
        str, typer.Option(envvar="MEETSYNC_DATABASE_URL", help="PostgreSQL, created if missing")
    ] = DEFAULT_DATABASE,
    redis_url: Annotated[
        str, typer.Option(envvar="MEETSYNC_REDIS_URL", help="throttle store")
    ] = DEFAULT_REDIS,
    broker_url: Annotated[
        str | None,
        typer.Option(
            envvar="MEETSYNC_BROKER_URL", help="default: the Redis URL with ?namespace=meetsync"
        ),
    ] = None,
    public_base_url: Annotated[
        str,
        typer.Option(
            envvar="MEETSYNC_PUBLIC_BASE_URL",
            help="the URL people and the notes pipeline reach this service at",
        ),
    ] = "http://127.0.0.1:8000",
    sandbox: Annotated[
        bool, typer.Option("--sandbox", help="allow the local emulators' endpoints")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="write a new .env over an existing one")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Make the secrets, write a commented .env, create and migrate the database."""
    from meetsync.db.migrate import upgrade

    if env_file.exists() and not force:
        values = dotenv_values(env_file)
        database_url = values.get("MEETSYNC_DATABASE_URL") or database_url
        said = f"kept {env_file} (it exists; --force writes a new one with new secrets)"
        wrote = False
    else:
        broker = broker_url or _with_namespace(redis_url, "meetsync")
        env_file.write_text(
            render_env(
                database_url=database_url,
                redis_url=redis_url,
                broker_url=broker,
                public_base_url=public_base_url,
                sandbox=sandbox,
            ),
            encoding="utf-8",
        )
        env_file.chmod(0o600)
        said = f"wrote {env_file}: new webhook, encryption and link secrets (mode 600)"
        wrote = True
    try:
        created = create_database(database_url)
        upgrade(database_url)
    except Exception as exc:
        # said of the URL init was given, whatever the environment holds
        line = explain(exc, get_settings().model_copy(update={"database_url": database_url}))
        if line is None:
            raise
        typer.echo(line, err=True)
        raise typer.Exit(1) from None
    if as_json:
        shown = {"env_file": str(env_file), "wrote": wrote, "created": created}
        typer.echo(json.dumps({**shown, "database": mask_text(database_url)}))
        return
    typer.echo(said)
    state = "created and migrated" if created else "migrated"
    typer.echo(f"database {mask_text(database_url)}: {state}")
    source = "" if env_file == Path(".env") else f"set -a; . {env_file}; set +a   # then\n  "
    typer.echo(
        "\nnext (README: From the demo to production):\n"
        f"  {source}meetsync orgs create acme --name 'Acme Analytics' --profile profile.yaml\n"
        "  meetsync connections add acme-asana --org acme --provider asana "
        "--credential token\n"
        "  meetsync serve & meetsync worker"
    )


def _with_namespace(url: str, namespace: str) -> str:
    parts = urlsplit(url)
    if not parts.scheme.startswith("redis"):
        return url
    joiner = "&" if parts.query else "?"
    return f"{url}{joiner}namespace={namespace}"
