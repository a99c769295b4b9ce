"""Experiments in the pipeline: the arm a meeting's extraction runs under, and its shadows.

`routed` is the extract stage's one call: the effective LLM settings for this meeting (task
defaults, then each running experiment's arm) and what to record with the insights. Shadow
arms run after the live extraction has been stored and `plan` enqueued: each writes its
own `ShadowExtraction` row and nothing else, and a failing shadow never fails the meeting.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from extraction.errors import LLMRateLimited
from extraction.experiments.report import enforce
from extraction.experiments.routing import Routed, Shadow, route, running
from extraction.extract import ExtractionResult, extract_insights
from extraction.llm import cost
from meetsync.db.models import Meeting, Org, ShadowExtraction
from meetsync.models import MeetingOutput
from meetsync.transcripts import with_transcript
from workers.runtime import Runtime
from workers.throttle.llm import LLMWait

log = logging.getLogger(__name__)

GUARD_EVERY_S = 30.0  # guardrails re-read every rating of an experiment: not per meeting
_last_guard: dict[str, float] = {}


def routed(runtime: Runtime, session: Session, meeting: Meeting) -> Routed:
    """The settings `meeting` is extracted with under the running experiments."""
    return route(session, runtime.settings.llm, meeting)


def timed_extract(
    payload: MeetingOutput, routing: Routed, profile: dict[str, Any]
) -> tuple[ExtractionResult, dict[str, Any]]:
    """Extract under `routing`; the result and what the stored record says about the run."""
    started = time.monotonic()
    result = extract_insights(payload, settings=routing.llm, org_profile=profile)
    return result, recorded(routing, result, time.monotonic() - started)


def recorded(routing: Routed, result: ExtractionResult, seconds: float) -> dict[str, Any]:
    """An `InsightRecord`'s experiment columns: arms, models, prompts, cost, latency."""
    return {
        "arms": routing.arms,
        "models": dict(routing.llm.models),
        "prompt_versions": dict(routing.llm.prompt_versions),
        "cost_usd": round(cost(result.usage, routing.llm.prices), 8),
        "latency_ms": int(seconds * 1000),
    }


def after_live(runtime: Runtime, meeting_id: str) -> None:
    """Run the shadow arms once the live extraction is stored; never raises."""
    try:
        run_shadows(runtime, meeting_id)
        guard(runtime)
    except Exception:  # the live meeting is done: a shadow must not bring it back
        log.exception("shadow arms or guardrails after meeting %s did not run", meeting_id)


def guard(runtime: Runtime, every_s: float = GUARD_EVERY_S) -> list[str]:
    """Check every running experiment's guardrails, at most once per `every_s` in a process;
    the arms stopped now, as `experiment/arm: why`."""
    now = time.monotonic()
    if now - _last_guard.get(runtime.settings.database_url, -every_s) < every_s:
        return []
    _last_guard[runtime.settings.database_url] = now
    stopped: list[str] = []
    with runtime.session() as session:
        for row in running(session):
            before = dict(row.stopped_arms)
            enforce(session, row.name)
            stopped += [
                f"{row.name}/{arm}: {why}"
                for arm, why in row.stopped_arms.items()
                if arm not in before
            ]
    for line in stopped:
        log.warning("guardrail stopped arm %s", line)
    return stopped


def run_shadows(runtime: Runtime, meeting_id: str) -> int:
    """Extract with each shadow arm not yet run on this revision; how many ran."""
    with runtime.session() as session:
        meeting = session.get(Meeting, meeting_id)
        if meeting is None:
            return 0
        routing = routed(runtime, session, meeting)
        done = {
            (experiment, arm)
            for experiment, arm in session.execute(
                select(ShadowExtraction.experiment, ShadowExtraction.arm).where(
                    ShadowExtraction.meeting_id == meeting_id,
                    ShadowExtraction.revision == meeting.revision,
                )
            )
        }
        todo = [s for s in routing.shadows if (s.experiment, s.arm.name) not in done]
        if not todo:
            return 0
        org = session.get(Org, meeting.org_id)
        profile = dict(org.profile) if org else {}
        payload = MeetingOutput.model_validate(meeting.payload)
        revision = meeting.revision
    payload = with_transcript(payload, runtime.settings.transcript_fetch)
    for shadow in todo:
        row = _shadow_run(shadow, payload, profile)
        if row is None:
            continue
        row.meeting_id, row.revision = meeting_id, revision
        try:
            with runtime.session() as session:
                session.add(row)
        except IntegrityError:
            pass  # another worker stored this shadow first
    return len(todo)


def _shadow_run(
    shadow: Shadow, payload: MeetingOutput, profile: dict[str, Any]
) -> ShadowExtraction | None:
    """The shadow arm's stored run; None when the LLM budget has no turn for it now (a
    shadow never waits: this meeting goes without it rather than delay live ones)."""
    task = shadow.arm
    row = ShadowExtraction(
        experiment=shadow.experiment,
        experiment_version=shadow.version,
        arm=task.name,
        model=task.model,
        prompt_version=task.prompt_version,
        usage=[],
    )
    started = time.monotonic()
    try:
        result = extract_insights(payload, settings=shadow.llm, org_profile=profile)
    except (LLMWait, LLMRateLimited):
        log.info("shadow %s/%s skipped: no LLM turn", shadow.experiment, task.name)
        return None
    except Exception as exc:  # a shadow's failure is its own statistic, never the meeting's
        log.warning("shadow %s/%s failed: %s", shadow.experiment, task.name, type(exc).__name__)
        row.error = f"{type(exc).__name__}: {exc}"[:2000]
    else:
        row.insights = result.insights.model_dump(mode="json")
        row.usage = [u.model_dump(mode="json") for u in result.usage]
        row.cost_usd = round(cost(result.usage, shadow.llm.prices), 8)
    row.latency_ms = int((time.monotonic() - started) * 1000)
    return row
