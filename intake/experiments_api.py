"""Experiments and ratings through the admin API.

    GET  /v1/admin/orgs/{org_id}/experiments                   experiments that reach the org
    GET  /v1/admin/orgs/{org_id}/experiments/{name}/report     per arm, as `experiments report`
    POST /v1/admin/orgs/{org_id}/meetings/{meeting_id}/ratings {"value": "up", "item_key": ""}

Experiments span orgs, so starting, promoting and rolling them back stay operator commands
(`meetsync experiments`); an org's admin sees the experiments scoped to its org (or to
all), as aggregates only. A rating from the API counts like one from the Slack recap.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from admin import experiments
from admin.ratings import rate
from admin.review import Reviewer
from intake.admin import admin_db
from intake.auth import OrgAdmin
from meetsync.db.models import Meeting

router = APIRouter(prefix="/v1/admin/orgs/{org_id}", tags=["experiments"])


class RatingIn(BaseModel):
    value: Literal["up", "down"]
    item_key: str = Field(default="", max_length=64, description='an item\'s op key; "" the recap')
    by: str | None = Field(default=None, description="who rated (an email); default: the token")


class RatingOut(BaseModel):
    ok: bool
    message: str


def _visible(org_id: str, spec: dict[str, object]) -> bool:
    orgs = spec.get("orgs")
    return orgs is None or (isinstance(orgs, list) and org_id in orgs)


@router.get("/experiments", response_model=list[experiments.ExperimentOut])
def list_experiments(admin: OrgAdmin, request: Request) -> list[experiments.ExperimentOut]:
    with admin_db(request) as (session, _):
        rows = experiments.listing(session)
    return [row for row in rows if _visible(admin.org_id, row.spec)]


@router.get("/experiments/{name}/report", response_model=experiments.ExperimentReport)
def experiment_report(name: str, admin: OrgAdmin, request: Request) -> experiments.ExperimentReport:
    """Per arm: ratings and approvals with intervals, the test against control, guardrails."""
    with admin_db(request) as (session, _):
        visible = [r for r in experiments.listing(session) if r.name == name]
        if not visible or not _visible(admin.org_id, visible[0].spec):
            raise HTTPException(404, f"no experiment {name!r} for this org")
        return experiments.report(session, name)


@router.post("/meetings/{meeting_id}/ratings", response_model=RatingOut)
def rate_meeting(meeting_id: str, body: RatingIn, admin: OrgAdmin, request: Request) -> RatingOut:
    """👍/👎 on a meeting's recap or one of its items; a person's second rating replaces it."""
    with admin_db(request) as (session, settings):
        meeting = session.get(Meeting, meeting_id)
        if meeting is None or meeting.org_id != admin.org_id:
            raise HTTPException(404, f"no meeting {meeting_id!r} in this org")
    who = Reviewer(email=body.by) if body.by else Reviewer(admin=True)
    decided = rate(settings, meeting_id, body.item_key, who, body.value, org_id=admin.org_id)
    if not decided.ok:
        raise HTTPException(409, decided.message)
    return RatingOut(ok=True, message=decided.message)
