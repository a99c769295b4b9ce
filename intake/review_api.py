"""The review decisions through the admin API: the same decisions as Slack's buttons.

    GET  /v1/admin/orgs/{org_id}/reviews                    what waits for a decision
    GET  /v1/admin/orgs/{org_id}/reviews/{id}               one request, decided or not
    POST /v1/admin/orgs/{org_id}/reviews/{id}/approve       {"by": "dana@acme.io"}
    POST /v1/admin/orgs/{org_id}/reviews/{id}/skip          {"by": ...}
    POST /v1/admin/orgs/{org_id}/reviews/{id}/edit          {"by": ..., "fields": {...}}

The org's admin token may decide any of its org's requests; `by` is recorded as who did.
A decision that does not count (already decided, expired) is a 409 saying what happened.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from admin import review
from admin.review import Decided, Reviewer, follow_up
from intake.auth import OrgAdmin

router = APIRouter(prefix="/v1/admin/orgs/{org_id}/reviews", tags=["review"])


class DecisionIn(BaseModel):
    by: str | None = Field(default=None, description="who decided (an email); default: the token")


class EditIn(DecisionIn):
    fields: dict[str, Any] = Field(description="field → the value to write instead")


class DecisionOut(BaseModel):
    ok: bool
    message: str
    errors: dict[str, str] = Field(default_factory=dict)


@router.get("", summary="Review requests waiting for a decision")
def list_pending(admin: OrgAdmin, request: Request) -> list[dict[str, Any]]:
    return review.pending(request.app.state.settings, admin.org_id)


@router.get("/{request_id}", summary="One review request")
def get_request(request_id: str, admin: OrgAdmin, request: Request) -> dict[str, Any]:
    found = review.get(request.app.state.settings, admin.org_id, request_id)
    if found is None:
        raise HTTPException(404, f"no review request {request_id!r} in this org")
    return found


@router.post("/{request_id}/edit", response_model=DecisionOut, summary="Write these values")
async def edit(request_id: str, body: EditIn, admin: OrgAdmin, request: Request) -> DecisionOut:
    _owned(request, admin.org_id, request_id)
    who = Reviewer(email=body.by or admin.label, admin=True)
    settings = request.app.state.settings
    decided = await run_in_threadpool(review.edit, settings, request_id, body.fields, who)
    return _answer(request, decided)


@router.post("/{request_id}/{choice}", response_model=DecisionOut, summary="Approve or skip")
async def decide(
    request_id: str, choice: str, body: DecisionIn, admin: OrgAdmin, request: Request
) -> DecisionOut:
    if choice not in ("approve", "skip"):
        raise HTTPException(404, "approve, skip or edit")
    _owned(request, admin.org_id, request_id)
    who = Reviewer(email=body.by or admin.label, admin=True)
    settings = request.app.state.settings
    decided = await run_in_threadpool(
        review.decide, settings, request_id, "approve" if choice == "approve" else "skip", who
    )
    return _answer(request, decided)


def _owned(request: Request, org_id: str, request_id: str) -> None:
    if review.get(request.app.state.settings, org_id, request_id) is None:
        raise HTTPException(404, f"no review request {request_id!r} in this org")


def _answer(request: Request, decided: Decided) -> DecisionOut:
    follow_up(request.app.state.pipeline, decided)
    if decided.errors:
        raise HTTPException(
            422, DecisionOut(ok=False, message=decided.message, errors=decided.errors).model_dump()
        )
    if not decided.ok:
        raise HTTPException(409, decided.message)
    return DecisionOut(ok=True, message=decided.message)
