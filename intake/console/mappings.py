"""The mapping editor: validation as you type, field pickers from the providers' describe,
a preview against a past meeting, save as a new version, history and rollback.

Every rule is the admin services' (`admin.validation`, `admin.versions`, `admin.preview`),
the very ones behind the admin API: the console adds pages, not checks.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from admin import connections, meetings, preview, validation, versions
from admin.errors import AdminError, NotFound
from intake.console.render import message, page, store
from intake.console.session import ConsoleSession, checked_form, current
from mappings import MappingError
from meetsync.masking import mask_text

router = APIRouter()
Signed = Annotated[ConsoleSession, Depends(current)]
# the key of a place in each provider's targets, for the field picker
PLACE_KEYS = {"salesforce": "object", "asana": "project", "slack": "channel"}


@router.get("/mappings", response_class=HTMLResponse)
def editor(request: Request, admin: Signed) -> Response:
    with store(request) as (session, settings):
        latest = versions.latest_version(session, admin.org_id)
        body = latest.body if latest else starter(session, settings, admin.org_id)
        return _editor(request, session, settings, admin, body, latest.version if latest else None)


@router.post("/mappings/validate", response_class=HTMLResponse)
async def validate(request: Request) -> Response:
    """The located problems of the body being typed (an htmx fragment)."""
    data = await checked_form(request)
    admin: ConsoleSession = request.state.console
    try:
        with store(request) as (session, settings):
            found = validation.check_body(
                session, settings, admin.org_id, _body(data), [validation.ALL]
            )
    except AdminError as exc:
        return page(request, "_problems.html", problems=[], failure=str(exc))
    except Exception as exc:  # a provider that failed to describe: say so, in its words
        return page(request, "_problems.html", problems=[], failure=_said(exc))
    return page(request, "_problems.html", problems=found, failure=None)


@router.post("/mappings/describe", response_class=HTMLResponse)
async def describe(request: Request) -> Response:
    """What a place accepts: fields, types, required, picklist values (an htmx fragment)."""
    data = await checked_form(request)
    admin: ConsoleSession = request.state.console
    name, place = data.get("connection", ""), data.get("place", "").strip()
    try:
        with store(request) as (session, settings):
            provider = connections.get_connection(session, name, admin.org_id).provider
            target: dict[str, Any] = {PLACE_KEYS.get(provider, "object"): place}
            if data.get("section"):
                target["section"] = data["section"]
            schema = validation.describe_place(session, settings, admin.org_id, name, target)
    except AdminError as exc:
        return message(request, str(exc), 404 if isinstance(exc, NotFound) else 422)
    except Exception as exc:
        return message(request, _said(exc), 502)
    return page(request, "_describe.html", schema=schema, provider=provider, place=place)


@router.post("/mappings/preview", response_class=HTMLResponse)
async def preview_draft(request: Request) -> Response:
    """The ops the body being edited would write for a past meeting, current → new."""
    data = await checked_form(request)
    admin: ConsoleSession = request.state.console
    meeting = data.get("meeting", "")
    if not meeting:
        return message(request, "Choose a past meeting to preview against.", 422)
    try:
        with store(request) as (session, settings):
            versions.check_fits_org(session, admin.org_id, versions.parse(_body(data)))
            meetings.get_meeting(session, admin.org_id, meeting)
            shown = preview.preview_stored(
                session, settings, meeting, org_id=admin.org_id, body=_body(data)
            )
    except MappingError as exc:
        return page(request, "_problems.html", 422, problems=exc.problems, failure=None)
    except AdminError as exc:
        return message(request, str(exc), 404 if isinstance(exc, NotFound) else 422)
    except Exception as exc:
        return message(request, f"The preview could not finish: {_said(exc)}", 504)
    return page(request, "_preview.html", preview=shown)


@router.post("/mappings", response_class=HTMLResponse)
async def save(request: Request) -> Response:
    """Store the body as a new version; on problems, the editor again with them, unsaved."""
    data = await checked_form(request)
    admin: ConsoleSession = request.state.console
    body = _body(data)
    try:
        with store(request) as (session, _):
            applied = versions.apply_version(
                session,
                admin.org_id,
                body,
                author=admin.author,
                comment=data.get("comment") or None,
            )
    except (MappingError, AdminError) as exc:
        problems = exc.problems if isinstance(exc, MappingError) else []
        with store(request) as (session, settings):
            latest = versions.latest_version(session, admin.org_id)
            return _editor(
                request,
                session,
                settings,
                admin,
                body,
                latest.version if latest else None,
                problems=problems,
                error="Not saved: " + (str(exc) if not problems else "fix the problems below."),
                status=422,
            )
    number = applied.version.version
    state = "saved" if applied.created else "unchanged"
    return RedirectResponse(f"/console/mappings/history?{state}={number}", status_code=303)


@router.get("/mappings/history", response_class=HTMLResponse)
def history(
    request: Request, admin: Signed, saved: int = 0, unchanged: int = 0, rolled: int = 0
) -> Response:
    with store(request) as (session, _):
        found = list(reversed(versions.list_versions(session, admin.org_id)))
    return page(
        request, "history.html", versions=found, saved=saved, unchanged=unchanged, rolled=rolled
    )


@router.get("/mappings/{number}", response_class=HTMLResponse)
def version_page(number: int, request: Request, admin: Signed) -> Response:
    try:
        with store(request) as (session, _):
            row = versions.version_out(
                versions.get_version(session, admin.org_id, number), with_body=True
            )
    except NotFound as exc:
        return message(request, str(exc), 404)
    return page(request, "version.html", version=row)


@router.post("/mappings/rollback", response_class=HTMLResponse)
async def rollback(request: Request) -> Response:
    data = await checked_form(request)
    admin: ConsoleSession = request.state.console
    to = data.get("to", "")
    if not (to.isascii() and to.isdigit()) or not 1 <= int(to) < 2**31:
        return message(request, "Choose a version to roll back to.", 422)
    try:
        with store(request) as (session, _):
            applied = versions.rollback(session, admin.org_id, int(to), author=admin.author)
    except NotFound as exc:
        return message(request, str(exc), 404)
    except (MappingError, AdminError) as exc:
        return message(request, f"Not rolled back: {exc}", 422)
    return RedirectResponse(
        f"/console/mappings/history?rolled={applied.version.version}", status_code=303
    )


def starter(session: Any, settings: Any, org_id: str) -> str:
    """A first mapping for an org without one: its connections named, a place to begin."""
    lines = [f"org: {org_id}", "connections:"]
    names = {c.provider: c.name for c in connections.list_connections(session, settings, org_id)}
    lines += [f"  {provider}: {name}" for provider, name in sorted(names.items())] or ["  {}"]
    lines += ["", "destinations: []", ""]
    return "\n".join(lines)


def _editor(
    request: Request,
    session: Any,
    settings: Any,
    admin: ConsoleSession,
    body: str,
    version: int | None,
    *,
    problems: list[MappingError] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    return page(
        request,
        "mappings.html",
        status,
        body=body,
        version=version,
        problems=problems or [],
        error=error,
        meetings=meetings.list_meetings(session, admin.org_id, limit=50),
        connections=connections.list_connections(session, settings, admin.org_id),
        max_bytes=versions.MAX_MAPPING_BYTES,
    )


def _body(data: dict[str, str]) -> str:
    """The mapping a form carries, with the line ends a browser gives a textarea undone."""
    return data.get("body", "").replace("\r\n", "\n")


def _said(exc: Exception) -> str:
    """An unexpected failure in words an admin may read: its kind and masked message."""
    text = mask_text(str(exc))[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
