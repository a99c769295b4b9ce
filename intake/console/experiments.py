"""Experiments: the ones that reach the org, each arm's report with a chart, and stop.

The report and stop are `admin.experiments`', as from the CLI and the API. An experiment
scoped to other orgs only is a 404 here; one shared with other orgs (scoped to all, or to
several) is shown, but stopping it stays an operator command. Promoting is always the
operator's (`meetsync experiments promote`): task defaults are shared by every org.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from admin import experiments
from admin.errors import Invalid, NotFound
from admin.experiments import ExperimentOut, ExperimentReport
from intake.console.render import message, page, store
from intake.console.session import ConsoleSession, checked_form, current

router = APIRouter()
Signed = Annotated[ConsoleSession, Depends(current)]
DONE = {"stop": "Stopped."}
# the chart's geometry, in SVG units: one row per arm, rates from 0 to 1 across WIDTH
LABEL, WIDTH, ROW = 120, 360, 28


@dataclass(frozen=True)
class Bar:
    """One arm's rate as a bar, with its 95 % interval as a whisker (None without data)."""

    arm: str
    y: int
    width: float | None
    low: float | None
    high: float | None
    text: str


def reaches(org_id: str, row: ExperimentOut) -> bool:
    """Whether the experiment runs on the org's meetings (scoped to it, or to every org)."""
    orgs = row.spec.get("orgs")
    return orgs is None or (isinstance(orgs, list) and org_id in orgs)


def own(org_id: str, row: ExperimentOut) -> bool:
    """Whether the experiment runs on the org's meetings only, so its admin may end it."""
    return row.spec.get("orgs") == [org_id]


def bars(report: ExperimentReport, metric: str) -> list[Bar]:
    """Each arm's `metric` ("rating" or "approval") laid out for the inline SVG chart."""
    shown = []
    for i, arm in enumerate(report.arms):
        rate = getattr(arm, metric)
        y = 8 + i * ROW
        if rate.rate is None or rate.ci95 is None:
            shown.append(Bar(arm.arm, y, None, None, None, "no data"))
            continue
        low, high = rate.ci95
        text = f"{rate.rate:.0%} ({low:.0%}–{high:.0%}, n={rate.trials})"
        shown.append(Bar(arm.arm, y, rate.rate * WIDTH, low * WIDTH, high * WIDTH, text))
    return shown


def _find(request: Request, admin: ConsoleSession, name: str) -> ExperimentOut:
    with store(request) as (session, _):
        found = [r for r in experiments.listing(session) if r.name == name]
    if not found or not reaches(admin.org_id, found[0]):
        raise NotFound(f"no experiment {name!r} for this org")
    return found[0]


@router.get("/experiments", response_class=HTMLResponse)
def experiments_page(request: Request, admin: Signed) -> Response:
    """The experiments that reach the org: task, state, arms and their shares."""
    with store(request) as (session, _):
        rows = [r for r in experiments.listing(session) if reaches(admin.org_id, r)]
    return page(request, "experiments.html", experiments=rows)


@router.get("/experiments/{name}", response_class=HTMLResponse)
def experiment_page(name: str, request: Request, admin: Signed, done: str = "") -> Response:
    """One experiment's report per arm, as `meetsync experiments report`, with a chart."""
    try:
        return _report(request, admin, name, note=DONE.get(done))
    except NotFound as exc:
        return message(request, str(exc), 404)


def _report(
    request: Request,
    admin: ConsoleSession,
    name: str,
    *,
    note: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    row = _find(request, admin, name)
    with store(request) as (session, _):
        report = experiments.report(session, name)  # may stop arms past a guardrail
    charts: dict[str, Any] = {m: bars(report, m) for m in ("rating", "approval")}
    context = {"x": row, "r": report, "charts": charts, "mine": own(admin.org_id, row)}
    geometry = {"label": LABEL, "width": WIDTH, "row": ROW}
    return page(request, "experiment.html", status, note=note, error=error, g=geometry, **context)


@router.post("/experiments/{name}/stop", response_class=HTMLResponse)
async def stop(name: str, request: Request) -> Response:
    """End the experiment without promoting; new meetings get the task's default again."""
    await checked_form(request)
    return _act(request, name, "stop")


def _act(request: Request, name: str, action: str) -> Response:
    admin: ConsoleSession = request.state.console
    try:
        row = _find(request, admin, name)
    except NotFound as exc:
        return message(request, str(exc), 404)
    refused = None
    if not own(admin.org_id, row):
        refused = "This experiment also runs for other orgs: an operator stops it."
    elif row.state != "running":
        refused = f"This experiment is {row.state} already; nothing was changed."
    if refused is None:
        try:
            with store(request) as (session, _):
                experiments.stop(session, name)
        except (Invalid, NotFound) as exc:
            refused = str(exc)
    if refused is not None:
        return _report(request, admin, name, error=refused, status=409)
    return RedirectResponse(f"/console/experiments/{quote(name)}?done={action}", status_code=303)
