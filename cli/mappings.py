"""`meetsync mappings schema|validate|apply|list|show|rollback|preview`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from admin import orgs, preview, validation, versions
from admin.errors import Invalid
from cli.admin_session import (
    admin_session,
    current_user,
    print_problems,
    reported,
)
from mappings import MappingError, mapping_json_schema
from meetsync.models import MeetingOutput

app = typer.Typer(no_args_is_help=True, help="Field mappings: check, version, preview.")

AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]
Org = Annotated[str | None, typer.Option(help="the org (default: the only one)")]
Against = Annotated[
    list[str] | None,
    typer.Option(help="check against this connection's provider; repeatable; 'all' for every one"),
]


def read(path: Path) -> str:
    with reported():
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise Invalid(f"cannot read {path}: {exc.strerror}") from exc


@app.command("schema")
def schema(
    out_file: Annotated[Path | None, typer.Option("--out", help="write it here")] = None,
) -> None:
    """Print the JSON Schema of mapping files (for editors)."""
    text = json.dumps(mapping_json_schema(), indent=2)
    if out_file is None:
        typer.echo(text)
    else:
        out_file.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"wrote {out_file}")


@app.command("validate")
def validate(file: Path, against: Against = None, as_json: AsJson = False) -> None:
    """Check a mapping file; with --against, also against the providers' metadata."""
    body = read(file)
    with reported():
        try:
            mapping = versions.parse(body, str(file))
        except MappingError as exc:
            if not as_json:
                raise
            _problems_json(exc.problems)
    if against:
        with admin_session() as (session, settings):
            problems = validation.validate_live(session, settings, mapping, against)
        if problems:
            if as_json:
                _problems_json(problems)
            print_problems(problems)
            raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps({"file": str(file), "ok": True, "against": against or []}))
        return
    checked = f" against {', '.join(against)}" if against else ""
    typer.echo(f"{file}: ok{checked}")


def _problems_json(problems: list[MappingError]) -> None:
    """The problems as JSON on stdout, exit 1."""
    listed = [
        {"file": p.file, "line": p.line, "path": p.path, "message": p.message, "fix": p.fix}
        for p in problems
    ]
    typer.echo(json.dumps({"ok": False, "problems": listed}))
    raise typer.Exit(1)


@app.command("apply")
def apply(
    file: Path,
    author: Annotated[str | None, typer.Option(help="who applies it (default: you)")] = None,
    comment: Annotated[str | None, typer.Option(help="why")] = None,
    against: Against = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="skip the providers: check the file alone")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Check a mapping against its providers, store it as its org's newest version and
    print the diff (--offline: the file alone)."""
    body = read(file)
    with reported():
        mapping = versions.parse(body, str(file))
    checked = against or ["all"]
    with admin_session() as (session, settings):
        if not offline:
            problems = validation.validate_live(session, settings, mapping, checked)
            if problems:
                print_problems(problems)
                raise typer.Exit(1)
        applied = versions.apply_version(
            session,
            mapping.org,
            body,
            author=author or current_user(),
            comment=comment,
            file=str(file),
        )
    version = applied.version
    if offline:
        typer.echo(
            "not checked against the providers (--offline): objects, fields, picklist values, "
            f"projects, sections and channels; check with: meetsync mappings validate {file} "
            "--against all",
            err=True,
        )
    else:
        typer.echo(f"checked against {', '.join(checked)}", err=True)
    if as_json:
        said = {"org_id": mapping.org, "version": version.version, "created": applied.created,
                "checked": not offline, "diff": version.diff or ""}  # fmt: skip
        typer.echo(json.dumps(said))
        return
    if not applied.created:
        typer.echo(f"{mapping.org}: unchanged, still version {version.version}")
        return
    typer.echo(f"{mapping.org}: version {version.version} by {version.created_by}")
    typer.echo(version.diff or "", nl=False)


@app.command("list")
def list_(org: Org = None, as_json: AsJson = False) -> None:
    """An org's mapping versions: who, when, why."""
    with admin_session() as (session, _):
        found = versions.list_versions(session, orgs.default_org(session, org))
    if as_json:
        typer.echo(json.dumps([v.model_dump(mode="json") for v in found], indent=2))
        return
    for v in found:
        when = v.created_at.strftime("%Y-%m-%d %H:%M:%S")
        typer.echo(f"{v.version}\t{when}\t{v.created_by}\t{v.comment or ''}")


@app.command("show")
def show(
    org: Org = None,
    version: Annotated[int | None, typer.Option(help="default: the latest")] = None,
    diff: Annotated[bool, typer.Option(help="the diff to the previous version instead")] = False,
) -> None:
    """Print a stored mapping version (or its diff)."""
    with admin_session() as (session, _):
        row = versions.get_version(session, orgs.default_org(session, org), version)
        text = (row.diff or "") if diff else row.body
    typer.echo(text, nl=False)


@app.command("rollback")
def rollback(
    to: Annotated[int, typer.Option("--to", help="the version to go back to")],
    org: Org = None,
    author: Annotated[str | None, typer.Option(help="default: you")] = None,
    as_json: AsJson = False,
) -> None:
    """Make an earlier version current again (stored as a new version)."""
    with admin_session() as (session, _):
        org_id = orgs.default_org(session, org)
        applied = versions.rollback(session, org_id, to, author=author or current_user())
    version = applied.version
    if as_json:
        said = {"org_id": org_id, "version": version.version, "created": applied.created}
        typer.echo(json.dumps(said))
        return
    if applied.created:
        typer.echo(f"{org_id}: version {version.version} = version {to}")
        typer.echo(version.diff or "", nl=False)
    else:
        typer.echo(f"{org_id}: version {to} is already current")


@app.command("preview")
def preview_cmd(
    meeting: Annotated[str | None, typer.Option(help="a stored meeting's id")] = None,
    meeting_file: Annotated[
        Path | None, typer.Option(help="a meeting JSON file (extraction runs on it)")
    ] = None,
    org: Annotated[str | None, typer.Option(help="the org, if meeting ids clash")] = None,
    mapping: Annotated[Path | None, typer.Option(help="a draft mapping file")] = None,
    version: Annotated[int | None, typer.Option(help="a stored version (default: latest)")] = None,
    current: Annotated[bool, typer.Option(help="read the providers' current values")] = True,
    as_json: AsJson = False,
) -> None:
    """The ops a mapping would produce for a meeting, with current values; writes nothing."""
    if (meeting is None) == (meeting_file is None):
        typer.echo("give exactly one of --meeting ID or --meeting-file FILE", err=True)
        raise typer.Exit(2)
    body = read(mapping) if mapping is not None else None
    file = str(mapping) if mapping is not None else None
    with admin_session() as (session, settings):
        if meeting is not None:
            result = preview.preview_stored(
                session,
                settings,
                meeting,
                org_id=org,
                version=version,
                body=body,
                file=file,
                current=current,
            )
        else:
            assert meeting_file is not None
            payload = _meeting_file(meeting_file)
            result = preview.preview_payload(
                session, settings, payload, version=version, body=body, file=file, current=current
            )
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    _print_preview(result)


def _meeting_file(path: Path) -> MeetingOutput:
    try:
        return MeetingOutput.model_validate_json(read(path))
    except ValidationError as exc:
        raise Invalid(f"{path} is not a meeting: {exc.errors()[0]['msg']}") from None


def _print_preview(result: preview.Preview) -> None:
    mapping = f"version {result.mapping_version}" if result.mapping_version else "draft mapping"
    typer.echo(
        f"{result.org_id} / {result.meeting_id}: {len(result.ops)} op(s) from {mapping}, "
        f"{result.insights_from}; nothing written"
    )
    for op in result.ops:
        exists = {True: "exists", False: "new at provider", None: ""}[op.exists]
        typer.echo(
            f"\n{op.connector} {op.action} via {op.connection} [{op.ledger}] {exists}".rstrip()
        )
        target = {k: v for k, v in op.target.items() if v not in (None, "", [], {})}
        typer.echo(f"  target: {json.dumps(target, default=str)}")
        for field in op.fields:
            line = f"  {field.name}: {_short(field.new)}"
            if field.changes is not None:
                line += f"   (now: {_short(field.current)})" if field.changes else "   (same)"
            if field.policy != "always":
                line += f"   [{field.policy}{': kept as is' if field.skipped else ''}]"
            typer.echo(line)
            if field.refused:
                typer.echo(f"    REFUSED: {field.refused}")
        if op.note:
            typer.echo(f"  note: {op.note}")


def _short(value: Any, limit: int = 100) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = text.replace("\n", "⏎")
    return text if len(text) <= limit else text[: limit - 1] + "…"
