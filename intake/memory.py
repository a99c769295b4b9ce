"""The admin API's org memory: `/v1/admin/orgs/{org_id}/memory`, behind the org's token.

Entries of one org only: another org's entry id answers 404, as if it did not exist.
What review decisions taught: `undo`, and the suggested preferences an admin accepts or
declines.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from admin import learning, memory, suggestions
from intake.admin import ERRORS, admin_db
from intake.auth import OrgAdmin

router = APIRouter(prefix="/v1/admin/orgs/{org_id}/memory", tags=["memory"], responses=ERRORS)


class EntryIn(BaseModel):
    kind: str = Field(description="person | term | preference | commitment")
    data: dict[str, Any] = Field(description="the entry's fields, e.g. name, aliases, email")


class Deleted(BaseModel):
    deleted: list[str] = Field(description="ids deleted: the entry, and for a person every "
                               "entry about them")  # fmt: skip


@router.get("", response_model=list[memory.EntryOut], summary="The org's memory")
def list_memory(
    admin: OrgAdmin, request: Request, kind: str | None = None, search: str | None = None
) -> list[memory.EntryOut]:
    with admin_db(request) as (session, _):
        return memory.list_entries(session, admin.org_id, kind, search)


@router.post("", status_code=201, response_model=memory.EntryOut, summary="Add an entry")
def add_memory(body: EntryIn, admin: OrgAdmin, request: Request) -> memory.EntryOut:
    with admin_db(request) as (session, _):
        return memory.add_entry(session, admin.org_id, body.kind, body.data)


@router.patch("/{entry_id}", response_model=memory.EntryOut, summary="Change an entry")
def edit_memory(
    entry_id: str, changes: dict[str, Any], admin: OrgAdmin, request: Request
) -> memory.EntryOut:
    """Change some fields; a field set to null is removed."""
    with admin_db(request) as (session, _):
        return memory.edit_entry(session, admin.org_id, entry_id, changes)


@router.delete("/{entry_id}", response_model=Deleted, summary="Delete an entry")
def delete_memory(entry_id: str, admin: OrgAdmin, request: Request) -> Deleted:
    with admin_db(request) as (session, _):
        return Deleted(deleted=memory.delete_entry(session, admin.org_id, entry_id))


@router.post("/import", response_model=memory.ImportReport, summary="Import, all or nothing")
def import_memory(
    document: dict[str, Any], admin: OrgAdmin, request: Request
) -> memory.ImportReport:
    """Sections people, terms, preferences, commitments; a bad row imports nothing (422)."""
    with admin_db(request) as (session, _):
        return memory.import_memory(session, admin.org_id, document)


@router.get("/export", summary="Every entry, in the shape import reads")
def export_memory(admin: OrgAdmin, request: Request) -> dict[str, list[dict[str, Any]]]:
    with admin_db(request) as (session, _):
        return memory.export_memory(session, admin.org_id)


@router.post("/sync", response_model=memory.SyncReport, summary="People from the providers")
def sync_memory(admin: OrgAdmin, request: Request) -> memory.SyncReport:
    with admin_db(request) as (session, settings):
        return memory.sync_people(session, settings, admin.org_id)


@router.post(
    "/{ref}/undo", response_model=list[learning.LearnedOut], summary="Undo what review taught"
)
def undo_learned(ref: str, admin: OrgAdmin, request: Request) -> list[learning.LearnedOut]:
    """`ref`: a lesson's id, or an entry's id (every lesson it holds)."""
    with admin_db(request) as (session, _):
        return learning.undo(session, admin.org_id, ref)


@router.get(
    "/suggestions",
    response_model=list[learning.LearnedOut],
    summary="Preferences suggested by repeated edits",
)
def list_suggestions(admin: OrgAdmin, request: Request) -> list[learning.LearnedOut]:
    with admin_db(request) as (session, _):
        return [learning.learned_out(s) for s in suggestions.pending(session, admin.org_id)]


@router.post(
    "/suggestions/{suggestion_id}/accept",
    response_model=learning.LearnedOut,
    summary="Accept: the planner applies the rule",
)
def accept_suggestion(suggestion_id: str, admin: OrgAdmin, request: Request) -> learning.LearnedOut:
    with admin_db(request) as (session, _):
        return learning.learned_out(suggestions.accept(session, admin.org_id, suggestion_id))


@router.post(
    "/suggestions/{suggestion_id}/decline",
    response_model=learning.LearnedOut,
    summary="Decline: not offered again",
)
def decline_suggestion(
    suggestion_id: str, admin: OrgAdmin, request: Request
) -> learning.LearnedOut:
    with admin_db(request) as (session, _):
        return learning.learned_out(suggestions.decline(session, admin.org_id, suggestion_id))
