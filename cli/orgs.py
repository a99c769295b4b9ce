"""`meetsync orgs create|list|show|profile|token`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from admin import orgs, tokens
from admin.errors import Invalid
from cli.admin_session import admin_session, reported

app = typer.Typer(no_args_is_help=True, help="Orgs: profiles and admin tokens.")

ProfileFile = Annotated[
    Path | None,
    typer.Option("--profile", help="YAML or JSON: sells, stages, glossary, people, …"),
]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]


def read_profile(path: Path | None) -> Any:
    if path is None:
        return None
    with reported():
        try:
            return yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise Invalid(f"cannot read the profile {path}: {exc}") from exc


@app.command("create")
def create(
    org_id: Annotated[str, typer.Argument(help="short id, e.g. acme")],
    name: Annotated[str, typer.Option(help="display name")] = "",
    profile: ProfileFile = None,
    as_json: AsJson = False,
) -> None:
    """Create an org, optionally with its profile."""
    data = read_profile(profile)
    with admin_session() as (session, _):
        org = orgs.create_org(session, org_id, name, data)
        said = json.dumps({"id": org.id, "name": org.name}) if as_json else None
        typer.echo(said or f"created org {org.id} ({org.name})")


@app.command("list")
def list_(as_json: AsJson = False) -> None:
    """Every org with its connections and current mapping version."""
    with admin_session() as (session, _):
        found = orgs.list_orgs(session)
    if as_json:
        typer.echo(json.dumps([o.model_dump(mode="json") for o in found], indent=2))
        return
    for org in found:
        version = f"mapping v{org.mapping_version}" if org.mapping_version else "no mapping"
        links = ", ".join(org.connections) or "no connections"
        typer.echo(f"{org.id}\t{org.name}\t{version}\t{links}")


@app.command("show")
def show(org_id: str, as_json: AsJson = False) -> None:
    """An org's profile, connections and mapping version."""
    with admin_session() as (session, _):
        org = orgs.describe_org(session, orgs.get_org(session, org_id))
    if as_json:
        typer.echo(org.model_dump_json(indent=2))
        return
    typer.echo(f"org {org.id}: {org.name}")
    typer.echo(f"mapping version: {org.mapping_version or 'none'}")
    typer.echo(f"connections: {', '.join(org.connections) or 'none'}")
    typer.echo("profile:")
    typer.echo(yaml.safe_dump(org.profile, sort_keys=False).rstrip() or "{}")


@app.command("profile")
def set_profile(
    org_id: str,
    profile: Annotated[Path, typer.Argument(help="YAML or JSON")],
    as_json: AsJson = False,
) -> None:
    """Replace an org's profile."""
    data = read_profile(profile)
    with admin_session() as (session, _):
        orgs.set_profile(session, org_id, data)
    typer.echo(
        json.dumps({"org_id": org_id, "profile": data})
        if as_json
        else f"profile of {org_id} replaced"
    )


@app.command("token")
def token(
    org_id: str,
    label: Annotated[str, typer.Option(help="who or what holds it")] = "",
    as_json: AsJson = False,
) -> None:
    """Mint an admin API token for one org; it is shown once and stored only as a hash."""
    with admin_session() as (session, _):
        minted = tokens.mint_token(session, org_id, label)
    if as_json:
        typer.echo(json.dumps({"id": minted.id, "org_id": minted.org_id, "token": minted.token}))
        return
    typer.echo(f"admin token {minted.id} for org {minted.org_id} (shown once, keep it safe):")
    typer.echo(minted.token)
