"""`meetsync memory add|list|edit|delete|import|export|sync|recall`: what an org taught us;
`undo|suggestions|accept|decline`: what review decisions taught it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from admin import memory, orgs, suggestions
from admin.errors import Invalid
from admin.learning import LearnedOut, learned_out, undo
from cli.admin_session import admin_session, reported
from cli.connections import option_value, parse_pairs
from extraction.memory import recall
from extraction.memory.render import render_memory
from meetsync.memory import KINDS
from meetsync.models import MeetingOutput

app = typer.Typer(
    no_args_is_help=True,
    help="Org memory: people (aliases, misspellings, ids), terms, preferences, commitments.",
)
Org = Annotated[str | None, typer.Option(help="the org (default: the only one)")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]
Aliases = Annotated[
    list[str] | None, typer.Option("--alias", help="a spoken name or misspelling (repeat)")
]
Fields = Annotated[
    list[str] | None,
    typer.Option("--set", help="FIELD=VALUE: email, role, team, account, owner, meaning, …"),
]
MAIN_FIELD = {"person": "name", "term": "name", "preference": "text", "commitment": "title"}


def _load(path: Path) -> Any:
    with reported():
        try:
            return yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise Invalid(f"cannot read {path}: {exc}") from exc


def _fields(pairs: list[str] | None) -> dict[str, Any]:
    with reported():
        parsed = parse_pairs(pairs or [], "--set")
    values = {k: option_value(v) for k, v in parsed.items()}
    for key in ("accounts", "op_keys"):
        if isinstance(values.get(key), str):
            values[key] = [v.strip() for v in values[key].split(",") if v.strip()]
    return values


def _show(entries: list[memory.EntryOut], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([e.model_dump(mode="json") for e in entries], indent=2))
        return
    for entry in entries:
        extra = {k: v for k, v in entry.data.items() if k not in {"name", "title", "text"}}
        shown = " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in extra.items())
        typer.echo(f"{entry.id}\t{entry.kind}\t{entry.name}\t{entry.source}\t{shown}")
        for lesson in entry.learned:
            typer.echo(f"\t{_lesson(lesson)}")


def _lesson(lesson: LearnedOut) -> str:
    """One line: what was learned, from which decision, and how to take it back."""
    what = f"{lesson.kind} {lesson.heard!r} → {lesson.meant!r}" if lesson.heard else lesson.meant
    return (
        f"learned {what} ({lesson.field}) from review {lesson.review_request_id} of meeting "
        f"{lesson.meeting_id} by {lesson.decided_by or 'someone'}; "
        f"undo: meetsync memory undo {lesson.id}"
    )


@app.command("add")
def add(
    kind: Annotated[str, typer.Argument(help=f"one of {', '.join(KINDS)}")],
    text: Annotated[str, typer.Argument(help="a name or term, a preference, a task title")],
    alias: Aliases = None,
    fields: Fields = None,
    org: Org = None,
    as_json: AsJson = False,
) -> None:
    """Add a person, term, preference or open commitment."""
    data = {MAIN_FIELD.get(kind, "name"): text, **_fields(fields)}
    if alias:
        data["aliases"] = alias
    with admin_session() as (session, _):
        entry = memory.add_entry(session, orgs.default_org(session, org), kind, data)
    _show([entry], as_json)


@app.command("list")
def list_(
    kind: Annotated[str | None, typer.Option(help=f"only one of {', '.join(KINDS)}")] = None,
    search: Annotated[str | None, typer.Option(help="only entries naming this")] = None,
    org: Org = None,
    as_json: AsJson = False,
) -> None:
    """The org's memory: id, kind, name, where it came from, its fields."""
    with admin_session() as (session, _):
        found = memory.list_entries(session, orgs.default_org(session, org), kind, search)
    _show(found, as_json)


@app.command("edit")
def edit(
    entry_id: str,
    alias: Aliases = None,
    fields: Fields = None,
    org: Org = None,
    as_json: AsJson = False,
) -> None:
    """Change fields of an entry (`--set role=null` removes one); `--alias` adds aliases."""
    changes = _fields(fields)
    with admin_session() as (session, _):
        org_id = orgs.default_org(session, org)
        if alias:
            known = memory.get_entry(session, org_id, entry_id).aliases
            changes["aliases"] = [*known, *alias]
        entry = memory.edit_entry(session, org_id, entry_id, changes)
    _show([entry], as_json)


@app.command("delete")
def delete(entry_id: str, org: Org = None, as_json: AsJson = False) -> None:
    """Delete an entry; deleting a person deletes every entry about them."""
    with admin_session() as (session, _):
        gone = memory.delete_entry(session, orgs.default_org(session, org), entry_id)
    if as_json:
        typer.echo(json.dumps({"deleted": gone}))
        return
    typer.echo(f"deleted {len(gone)} entr{'y' if len(gone) == 1 else 'ies'}: {', '.join(gone)}")


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="YAML or JSON: people, terms, preferences, …")],
    org: Org = None,
    as_json: AsJson = False,
) -> None:
    """Import a memory file; any bad row (reported with its place) imports nothing."""
    document = _load(path)
    with admin_session() as (session, _):
        report = memory.import_memory(session, orgs.default_org(session, org), document)
    if as_json:
        typer.echo(json.dumps({"imported": report.written}))
        return
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(report.written.items()))
    typer.echo(f"imported {counts or 'nothing'}")


@app.command("export")
def export(
    out: Annotated[Path | None, typer.Option(help="write here instead of stdout")] = None,
    org: Org = None,
    as_json: AsJson = False,
) -> None:
    """Every entry as a YAML file `import` reads back (JSON with --json; both import)."""
    with admin_session() as (session, _):
        data = memory.export_memory(session, orgs.default_org(session, org))
    text = (
        json.dumps(data, indent=2, ensure_ascii=False, default=str)
        if as_json
        else yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    )
    if out is None:
        typer.echo(text.rstrip())
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}")


@app.command("sync")
def sync(org: Org = None, as_json: AsJson = False) -> None:
    """Refresh people and their ids from the org's Salesforce, Asana and Slack connections."""
    with admin_session() as (session, settings):
        report = memory.sync_people(session, settings, orgs.default_org(session, org))
    if as_json:
        typer.echo(json.dumps({"people": report.people, "skipped": report.skipped}))
        return
    for name, count in sorted(report.people.items()):
        typer.echo(f"{name}: {count} people")
    for name, reason in sorted(report.skipped.items()):
        typer.echo(f"{name}: skipped ({reason})", err=True)


@app.command("recall")
def recall_(
    meeting: Annotated[Path, typer.Argument(help="a meeting JSON (the webhook body)")],
    budget: Annotated[int, typer.Option(help="prompt tokens memory may add")] = 600,
    org: Org = None,
    as_json: AsJson = False,
) -> None:
    """What memory would put in front of the model for one meeting, and its tokens."""
    with reported():
        try:
            payload = MeetingOutput.model_validate(_load(meeting))
        except ValueError as exc:
            raise Invalid(f"{meeting}: not a meeting: {exc}") from None
    with admin_session() as (session, settings):
        org_id = orgs.default_org(session, org or payload.org_id)
        found = recall(session, org_id, payload, budget, settings.llm.memory_semantic)
    if as_json:
        shown = {"memory": render_memory(found.memory), "tokens": found.tokens}
        typer.echo(json.dumps({**shown, "left_out": found.left_out}))
        return
    typer.echo(render_memory(found.memory) or "(nothing recalled)")
    typer.echo(f"{found.tokens} tokens; {found.left_out} entries left out by the budget")


@app.command("undo")
def undo_(
    ref: Annotated[str, typer.Argument(help="a lesson's id, or an entry's (all its lessons)")],
    org: Org = None,
    as_json: AsJson = False,
) -> None:
    """Take back what a review decision taught: an added alias goes, a learned entry too."""
    with admin_session() as (session, _):
        undone = undo(session, orgs.default_org(session, org), ref)
    if as_json:
        typer.echo(json.dumps([u.model_dump(mode="json") for u in undone], indent=2))
        return
    for lesson in undone:
        typer.echo(f"undone: {_lesson(lesson).split('; undo:')[0]}")


@app.command("suggestions")
def suggestions_(org: Org = None, as_json: AsJson = False) -> None:
    """Preferences suggested by edits repeated across meetings, waiting for `accept`."""
    with admin_session() as (session, _):
        found = [
            learned_out(s) for s in suggestions.pending(session, orgs.default_org(session, org))
        ]
    if as_json:
        typer.echo(json.dumps([f.model_dump(mode="json") for f in found], indent=2))
        return
    if not found:
        typer.echo("(no suggestions)")
    for suggestion in found:
        rule = {k: v for k, v in suggestion.rule.items() if k != "text"}
        typer.echo(f"{suggestion.id}\t{suggestion.rule.get('text')}\t{json.dumps(rule)}")


@app.command("accept")
def accept(suggestion_id: str, org: Org = None, as_json: AsJson = False) -> None:
    """Accept a suggested preference: the planner applies it from the next plan on."""
    with admin_session() as (session, _):
        org_id = orgs.default_org(session, org)
        accepted = suggestions.accept(session, org_id, suggestion_id)
        entry = memory.entry_out(memory.get_entry(session, org_id, str(accepted.entry_id)))
    _show([entry], as_json)


@app.command("decline")
def decline(suggestion_id: str, org: Org = None, as_json: AsJson = False) -> None:
    """Decline a suggested preference; it is not offered again."""
    with admin_session() as (session, _):
        suggestions.decline(session, orgs.default_org(session, org), suggestion_id)
    if as_json:
        typer.echo(json.dumps({"declined": suggestion_id}))
    else:
        typer.echo(f"declined {suggestion_id}")
