"""`meetsync connections add|list|test|remove|rotate-keys`: secrets go in, never come out."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from admin import connections
from admin.errors import Invalid
from cli.admin_session import admin_session, reported

app = typer.Typer(no_args_is_help=True, help="An org's provider connections (credentials sealed).")

AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]


def parse_pairs(pairs: list[str], what: str, *, prompt_missing: bool = False) -> dict[str, str]:
    """KEY=VALUE pairs; a bare KEY is asked for without echo when `prompt_missing`."""
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq and prompt_missing:
            value = _ask(key)
        elif not eq or not key:
            raise Invalid(f"{what} {pair!r} must look like KEY=VALUE")
        parsed[key.strip()] = value
    return parsed


def _ask(key: str) -> str:
    """A credential's value typed unseen at a terminal, or a line piped on stdin."""
    if sys.stdin.isatty():
        return str(typer.prompt(key, hide_input=True))
    value = sys.stdin.readline().strip()
    if not value:
        raise Invalid(
            f"--credential {key} has no value and there is no terminal to ask on: pipe it "
            f'(echo "$SECRET" | meetsync connections add …), give {key}=VALUE, or use '
            "--credentials-file"
        )
    return value


def option_value(raw: str) -> Any:
    """Option values are JSON when they parse as JSON (numbers, booleans), else text."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="unique name, e.g. acme-salesforce")],
    org: Annotated[str, typer.Option(help="the org it belongs to")],
    provider: Annotated[str, typer.Option(help="salesforce | asana | slack | a plugin")],
    base_url: Annotated[str | None, typer.Option(help="the provider's API base URL")] = None,
    credential: Annotated[
        list[str] | None,
        typer.Option(help="KEY=VALUE, or KEY alone to type the value unseen; repeatable"),
    ] = None,
    credentials_file: Annotated[
        Path | None, typer.Option(help="YAML or JSON object of credentials")
    ] = None,
    option: Annotated[list[str] | None, typer.Option(help="KEY=VALUE; repeatable")] = None,
    replace: Annotated[bool, typer.Option(help="update a connection of the same org")] = False,
    as_json: AsJson = False,
) -> None:
    """Add a connection; its credentials are encrypted before they are stored."""
    with reported():
        secrets: dict[str, str] = {}
        if credentials_file is not None:
            try:
                loaded = yaml.safe_load(credentials_file.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError) as exc:
                raise Invalid(f"cannot read {credentials_file}: {exc}") from exc
            if not isinstance(loaded, dict):
                raise Invalid(f"{credentials_file} must hold an object of credentials")
            secrets.update({str(k): str(v) for k, v in loaded.items()})
        secrets.update(parse_pairs(credential or [], "credential", prompt_missing=True))
        options = {k: option_value(v) for k, v in parse_pairs(option or [], "option").items()}
    with admin_session() as (session, settings):
        connections.add_connection(
            session,
            settings,
            org_id=org,
            name=name,
            provider=provider,
            credentials=secrets,
            base_url=base_url,
            options=options,
            replace=replace,
        )
    if as_json:
        saved = {"name": name, "org_id": org, "provider": provider, "credentials": sorted(secrets)}
        typer.echo(json.dumps(saved))
        return
    keys = ", ".join(sorted(secrets))
    typer.echo(f"connection {name} ({provider}) saved for {org}; credentials: {keys}")


@app.command("list")
def list_(
    org: Annotated[str | None, typer.Option(help="only this org's")] = None,
    as_json: AsJson = False,
) -> None:
    """Connections with the names of their credentials, never the values."""
    with admin_session() as (session, settings):
        found = connections.list_connections(session, settings, org)
    if as_json:
        typer.echo(json.dumps([c.model_dump(mode="json") for c in found], indent=2))
        return
    if not found:
        where = f" in org {org}" if org else ""
        typer.echo(f"no connections{where}; add one: meetsync connections add NAME --org ORG …")
        return
    for conn in found:
        status = conn.status + (f" ({conn.status_reason})" if conn.status_reason else "")
        keys = ",".join(conn.credential_keys)
        line = f"{conn.name}\t{conn.org_id}\t{conn.provider}\t{conn.base_url or '-'}\t{keys}"
        typer.echo(f"{line}\t{status}")


@app.command("test")
def test(name: str, as_json: AsJson = False) -> None:
    """Call the provider's identity endpoints; say what works and what does not."""
    with admin_session() as (session, settings):
        report = connections.test_connection(session, settings, name)
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        for check in report.checks:
            mark = "ok  " if check.ok else "FAIL"
            typer.echo(f"{mark} {check.name}: {check.detail}")
        verdict = "works" if report.ok else "does not work"
        typer.echo(f"{report.connection} ({report.provider}) {verdict}")
    if not report.ok:
        raise typer.Exit(1)


@app.command("remove")
def remove(
    name: str,
    force: Annotated[bool, typer.Option(help="even if the current mapping uses it")] = False,
    as_json: AsJson = False,
) -> None:
    """Delete a connection (refused while the org's current mapping writes through it)."""
    with admin_session() as (session, _):
        connections.remove_connection(session, name, force=force)
    typer.echo(json.dumps({"removed": name}) if as_json else f"connection {name} removed")


@app.command("rotate-keys")
def rotate_keys(as_json: AsJson = False) -> None:
    """Re-encrypt every connection under the newest key in MEETSYNC_ENCRYPTION_KEYS."""
    with admin_session() as (session, settings):
        count = connections.rotate_keys(session, settings)
    said = json.dumps({"re_encrypted": count}) if as_json else None
    typer.echo(said or f"re-encrypted {count} connection(s) under the newest key")
