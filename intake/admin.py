"""The admin HTTP API: one org's profile, connections and mappings, behind its admin token.

Every route sits under /v1/admin/orgs/{org_id} and needs a token minted for that org.
Credentials go in (sealed at once) and never come out: responses name credential keys only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from admin import connections, orgs, preview, validation, versions
from admin.errors import AdminError, AlreadyExists, NotFound
from intake.auth import OrgAdmin
from mappings import MappingError
from meetsync.db.session import session_scope
from meetsync.models import MeetingOutput
from meetsync.settings import Settings


class Problem(BaseModel):
    """One problem in a mapping: where it is and how to fix it."""

    file: str | None
    line: int | None
    path: str
    message: str
    fix: str | None


class ValidationReport(BaseModel):
    ok: bool
    problems: list[Problem]


class FieldError(BaseModel):
    """One field of the request that does not fit (FastAPI's own validation)."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorOut(BaseModel):
    """Every 4xx of the admin API: a sentence, the request's field errors, or a mapping's
    located problems."""

    detail: str | ValidationReport | list[FieldError]


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "no admin token, or one that matches nothing"},
    403: {"model": ErrorOut, "description": "a token of another org"},
    404: {"model": ErrorOut, "description": "not in this org"},
    409: {"model": ErrorOut, "description": "exists already"},
    422: {
        "model": ErrorOut,
        "description": "the request does not fit, or the mapping has problems",
    },
}
router = APIRouter(prefix="/v1/admin/orgs/{org_id}", tags=["admin"], responses=ERRORS)


class ConnectionIn(BaseModel):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")
    provider: str
    base_url: str | None = None
    credentials: dict[str, str] = Field(
        description="write-only: sealed at once, never returned",
        json_schema_extra={"writeOnly": True},
    )
    options: dict[str, Any] = Field(default_factory=dict)
    replace: bool = Field(default=False, description="update this org's connection of that name")


class MappingIn(BaseModel):
    body: str = Field(description="the mapping YAML")
    comment: str | None = None


class ValidateIn(BaseModel):
    body: str = Field(description="the mapping YAML")
    against: list[str] = Field(
        default_factory=lambda: [validation.ALL],
        description="connections whose providers to check against; 'all' for every one; "
        "[] for the file alone",
    )


# the largest version a database integer column holds; larger ones exist nowhere
MAX_VERSION = 2**31 - 1


class RollbackIn(BaseModel):
    to: int = Field(ge=1, le=MAX_VERSION)


class PreviewIn(BaseModel):
    meeting_id: str | None = Field(default=None, description="a stored meeting (its insights)")
    meeting: MeetingOutput | None = Field(default=None, description="or a meeting, extracted anew")
    body: str | None = Field(default=None, description="a draft mapping instead of a version")
    version: int | None = Field(
        default=None, ge=1, le=MAX_VERSION, description="a stored version (default: latest)"
    )
    current: bool = Field(default=True, description="read the providers' current values")


def problems_of(exc: MappingError | list[MappingError]) -> list[Problem]:
    found = exc.problems if isinstance(exc, MappingError) else exc
    return [
        Problem(file=p.file, line=p.line, path=p.path, message=p.message, fix=p.fix) for p in found
    ]


@contextmanager
def admin_db(request: Request) -> Iterator[tuple[Session, Settings]]:
    """A session, with admin and mapping errors turned into HTTP answers."""
    settings: Settings = request.app.state.settings
    try:
        with session_scope(settings.database_url) as session:
            yield session, settings
    except MappingError as exc:
        report = ValidationReport(ok=False, problems=problems_of(exc))
        raise HTTPException(422, report.model_dump()) from None
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except AlreadyExists as exc:
        raise HTTPException(409, str(exc)) from None
    except AdminError as exc:
        raise HTTPException(422, str(exc)) from None


# -- the org ------------------------------------------------------------------------------
@router.get("", response_model=orgs.OrgOut, summary="The org: profile, connections, mapping")
def get_org(admin: OrgAdmin, request: Request) -> orgs.OrgOut:
    with admin_db(request) as (session, _):
        return orgs.describe_org(session, orgs.get_org(session, admin.org_id))


@router.put("/profile", response_model=orgs.OrgOut, summary="Replace the org's profile")
def put_profile(profile: orgs.OrgProfile, admin: OrgAdmin, request: Request) -> orgs.OrgOut:
    with admin_db(request) as (session, _):
        org = orgs.set_profile(session, admin.org_id, profile.model_dump(mode="json"))
        return orgs.describe_org(session, org)


# -- connections --------------------------------------------------------------------------
@router.get("/connections", response_model=list[connections.ConnectionOut])
def list_connections(admin: OrgAdmin, request: Request) -> list[connections.ConnectionOut]:
    """The org's connections, with credential names and never their values."""
    with admin_db(request) as (session, settings):
        return connections.list_connections(session, settings, admin.org_id)


@router.post("/connections", status_code=201, response_model=connections.ConnectionOut)
def add_connection(
    body: ConnectionIn, admin: OrgAdmin, request: Request
) -> connections.ConnectionOut:
    """Add (or, with replace, update) a connection; its credentials are sealed at once."""
    with admin_db(request) as (session, settings):
        row = connections.add_connection(
            session,
            settings,
            org_id=admin.org_id,
            name=body.name,
            provider=body.provider,
            credentials=body.credentials,
            base_url=body.base_url,
            options=body.options,
            replace=body.replace,
        )
        return connections.describe_connection(settings, row)


@router.delete("/connections/{name}", status_code=204, response_class=Response)
def remove_connection(
    name: str, admin: OrgAdmin, request: Request, force: bool = False
) -> Response:
    """Delete a connection (refused while the current mapping writes through it)."""
    with admin_db(request) as (session, _):
        connections.remove_connection(session, name, admin.org_id, force=force)
    return Response(status_code=204)


@router.post("/connections/{name}/test", response_model=connections.TestReport)
def test_connection(name: str, admin: OrgAdmin, request: Request) -> connections.TestReport:
    """Call the provider's identity endpoints; report what works and what does not."""
    with admin_db(request) as (session, settings):
        return connections.test_connection(session, settings, name, admin.org_id)


# -- mappings -----------------------------------------------------------------------------
@router.get("/mappings", response_model=list[versions.VersionOut])
def list_mappings(admin: OrgAdmin, request: Request) -> list[versions.VersionOut]:
    """Every version of the org's mapping: who applied it, when, why, and the diff."""
    with admin_db(request) as (session, _):
        return versions.list_versions(session, admin.org_id)


@router.get("/mappings/{version}", response_model=versions.VersionOut)
def get_mapping(version: str, admin: OrgAdmin, request: Request) -> versions.VersionOut:
    """One version with its YAML body; `latest` for the current one."""
    number = None if version == "latest" else _version_number(version)
    with admin_db(request) as (session, _):
        row = versions.get_version(session, admin.org_id, number)
        return versions.version_out(row, with_body=True)


@router.put(
    "/mappings",
    response_model=versions.Applied,
    responses={
        200: {"description": "unchanged: the body equals the current version"},
        201: {"description": "stored as a new version"},
        422: {"model": ErrorOut, "description": "the mapping has problems (detail.problems)"},
    },
)
def put_mapping(
    body: MappingIn, admin: OrgAdmin, request: Request, response: Response
) -> versions.Applied:
    """Store a mapping as the org's newest version (checked first; the diff is kept)."""
    with admin_db(request) as (session, _):
        applied = versions.apply_version(
            session, admin.org_id, body.body, author=admin.author, comment=body.comment
        )
    response.status_code = status.HTTP_201_CREATED if applied.created else status.HTTP_200_OK
    return applied


@router.post("/mappings/rollback", response_model=versions.Applied)
def rollback_mapping(body: RollbackIn, admin: OrgAdmin, request: Request) -> versions.Applied:
    """Make an earlier version current again, stored as a new version."""
    with admin_db(request) as (session, _):
        return versions.rollback(session, admin.org_id, body.to, author=admin.author)


@router.post("/mappings/validate", response_model=ValidationReport)
def validate_mapping(body: ValidateIn, admin: OrgAdmin, request: Request) -> ValidationReport:
    """Check a mapping: its YAML, its connections, and the providers' metadata."""
    with admin_db(request) as (session, settings):
        found = validation.check_body(session, settings, admin.org_id, body.body, body.against)
    return ValidationReport(ok=not found, problems=problems_of(found))


@router.post("/mappings/preview", response_model=preview.Preview)
def preview_mapping(body: PreviewIn, admin: OrgAdmin, request: Request) -> preview.Preview:
    """The ops a mapping would produce for a meeting, with providers' current values.

    Writes nothing anywhere: not to the providers, not to the ledger."""
    if (body.meeting_id is None) == (body.meeting is None):
        raise HTTPException(422, "give exactly one of meeting_id or meeting")
    if body.meeting is not None and body.meeting.org_id != admin.org_id:
        raise HTTPException(403, f"this meeting belongs to org {body.meeting.org_id!r}")
    with admin_db(request) as (session, settings):
        if body.body is not None:
            # a draft is held to what PUT and validate hold it to: this org's, its connections
            versions.check_fits_org(session, admin.org_id, versions.parse(body.body))
        if body.meeting is not None:
            return preview.preview_payload(
                session,
                settings,
                body.meeting,
                version=body.version,
                body=body.body,
                current=body.current,
            )
        assert body.meeting_id is not None
        return preview.preview_stored(
            session,
            settings,
            body.meeting_id,
            org_id=admin.org_id,
            version=body.version,
            body=body.body,
            current=body.current,
        )


def _version_number(text: str) -> int:
    # isdigit() alone takes '²' and other digits int() refuses
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        raise HTTPException(422, "a version is a number or 'latest'")
    number = int(text)
    if not 1 <= number <= MAX_VERSION:
        raise HTTPException(404, f"no mapping version {number}")
    return number
