"""The pipeline's actors: thin adapters that call a stage and say what comes next.

| actors (one per lane, `workers.lanes`)           | queues                      | stage     |
| ------------------------------------------------ | --------------------------- | --------- |
| `extract`, `extract_backfill`, `extract_returns` | `extract[.<lane>]`          | `extract` |
| `plan` (extraction plans in its own message;     | `plan[.<lane>]`             | `plan`    |
|  these are the sweeper's and replays')           |                             |           |
| `push_<connector>`, `…_backfill`, `…_returns`    | `push.<connector>[.<lane>]` | `push`    |

An actor that must wait answers `Later`; the `Throttling` middleware (`throttle=` option)
admits each throttled message and sends those answers back on the returns lane.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq import Actor, Broker
from dramatiq.broker import MessageProxy
from dramatiq.middleware import CurrentMessage
from sqlalchemy import select

from connectors.errors import Transient
from connectors.registry import available
from extraction.errors import LLMInvalidOutput, LLMRateLimited, LLMRefused, LLMRequestRejected
from mappings import MappingError, PlanError
from meetsync.db.models import Meeting, OpRecord
from meetsync.states import PushState
from meetsync.transcripts import TranscriptUnavailable
from workers import experiments, outcomes, pushing, stages
from workers.batching import batches
from workers.lanes import Lane, Laned, Later, Route, answering
from workers.pushing import Planned
from workers.review_actors import ReviewActors, declare_review
from workers.review_sweeper import ReviewSweeper
from workers.runtime import Runtime
from workers.sweeper import Sweeper
from workers.throttle.llm import LLMWait
from workers.throttle.middleware import Throttling, take_turn
from workers.tracing import Tracing

log = logging.getLogger(__name__)

# retrying cannot fix a refusal, a bad schema answer, a bad key or model, or a transcript
# URL we may not fetch: the meeting fails at once, with the reason
FINAL_LLM_ERRORS = (LLMInvalidOutput, LLMRefused, LLMRequestRejected, TranscriptUnavailable)


@dataclass(kw_only=True)
class Pipeline:
    """The declared actors of one broker, and how to start the flow at each stage."""

    broker: Broker
    runtime: Runtime
    extract: Laned
    plan: Laned
    push: dict[str, Laned]
    throttling: Throttling
    review: ReviewActors | None = None

    def enqueue_extract(
        self, meeting_id: str, *, backfill: bool = False, org: str | None = None
    ) -> None:
        """Extract a stored meeting, on the backfill lane for a replayed one."""
        route = Route(org=org, backfill=backfill) if org else None
        self.extract.send(meeting_id, route=route, lane=Lane.of(backfill))

    def enqueue_pushes(self, planned: Iterable[Planned]) -> int:
        """Push these ops, a meeting's ops for one connection in one message; how many
        messages were sent (ops of a connector this worker does not know are left)."""
        sent = 0
        for batch in batches(self.runtime.settings, planned):
            if batch.connector in self.push:
                # a single op is sent as its key alone, as releases before batching did
                keys = batch.keys[0] if len(batch.keys) == 1 else batch.keys
                self.push[batch.connector].send(keys, route=batch.route)
                sent += 1
        return sent

    def enqueue_review_refresh(self, meeting_id: str) -> None:
        """Show a decision in the meeting's review messages, then what it wrote."""
        if self.review is not None:
            self.review.refresh.send(meeting_id, 0)

    def enqueue_ops(self, keys: Iterable[str]) -> int:
        """Push these ledger ops again (a sweep, a replayed dead letter); how many were sent."""
        wanted = list(keys)
        with self.runtime.session() as session:
            rows = session.execute(
                select(OpRecord, Meeting.source)
                .join(Meeting, Meeting.id == OpRecord.meeting_id)
                .where(OpRecord.key.in_(wanted))
            ).all()
            planned = [pushing.planned(row, source == "backfill") for row, source in rows]
        known = [item for item in planned if item.connector in self.push]
        self.enqueue_pushes(known)
        return len(known)


def declare(broker: Broker, runtime: Runtime) -> Pipeline:
    """Declare the actors on `broker`; the caller owns the broker's lifetime."""
    if not any(isinstance(m, CurrentMessage) for m in broker.middleware):
        broker.add_middleware(CurrentMessage())
    retry = runtime.settings.retry
    options: dict[str, Any] = {
        "max_retries": retry.max_retries,
        "min_backoff": retry.min_backoff_ms,
        "max_backoff": retry.max_backoff_ms,
        # a message naming a meeting or op this database does not have will never succeed
        "throws": (stages.MeetingGone, pushing.OpGone),
    }

    def extract(meeting_id: str) -> Later | None:
        try:
            extracted = stages.extract(runtime, meeting_id)
        except stages.MeetingGone:
            raise
        except LLMWait as wait:
            outcomes.waited(next(iter(wait.tickets), "llm"), wait.wait_ms)
            # the model's RPM/TPM: come back at the turn, keeping its tickets and the retries
            return Later(wait.wait_ms, "queued", {"tickets": wait.tickets})
        except LLMRateLimited as exc:
            # waiting for the provider is not a failure: come back later, keep the retries
            return Later(int(exc.retry_after * 1000), "throttled")
        except FINAL_LLM_ERRORS as exc:
            _fail_meeting(runtime, meeting_id, f"{type(exc).__name__}: {exc}", type(exc).__name__)
            return None
        except Exception as exc:
            if _retries_left():
                raise
            # the LLM stayed unreachable: the meeting fails visibly, a replay brings it back
            _fail_meeting(
                runtime,
                meeting_id,
                f"retries exhausted: {_reason(exc)}",
                f"retries exhausted: {type(exc).__name__}",
            )
            return None
        outcomes.extracted(runtime, extracted)
        # planned here, in the same message: no second hop and no second read of what was
        # just stored (a failure retries this message, which finds its insights cached);
        # the key spares planning a second recall of the meeting's memory
        plan_meeting(meeting_id, extracted.key, extracted)
        if extracted.shadows:
            experiments.after_live(runtime, meeting_id)  # shadow arms: their own rows only
        else:
            experiments.guard(runtime)
        return None

    def plan_meeting(
        meeting_id: str, key: str | None = None, extracted: stages.Extracted | None = None
    ) -> None:
        try:
            planned_ops = stages.plan(runtime, meeting_id, key=key, extracted=extracted)
        except (PlanError, MappingError) as exc:
            # a template over its budget (or data the mapping cannot take): retrying cannot
            # help; the reason is the meeting's error, for the admin to fix the mapping
            stages.fail_meeting(runtime, meeting_id, f"the mapping cannot plan it: {exc}")
            return
        pipeline.enqueue_pushes(p for p in planned_ops if not p.deferred)
        if pipeline.review is not None:
            pipeline.review.after_plan(runtime, meeting_id)

    def push(keys: str | list[str]) -> Later | None:
        batch = [keys] if isinstance(keys, str) else list(keys)
        try:
            pushed = pushing.push_ops(runtime, batch, turn=take_turn)
        except Transient as exc:
            pushed = pushing.Pushed(transient=str(exc))  # before any write (a credential)
        if pushed.transient is not None:
            left = [key for key in batch if key not in pushed.states]
            if _retries_left():
                pushing.record_error(runtime, left, pushed.transient)
                _settled(pushed)
                raise Transient(pushed.transient)
            reason = f"retries exhausted: {pushed.transient}"
            for key, meeting_id in pushing.give_up(runtime, left, reason).items():
                pushed.settle(key, PushState.DEAD, meeting_id)
        _settled(pushed)
        return pushed.later()

    def _settled(pushed: pushing.Pushed) -> None:
        """Count each op's outcome; wake the recaps that waited for the ops settled here."""
        provider = _provider()
        for key, state in pushed.states.items():
            outcomes.pushed(runtime, key, provider, state)
        message = CurrentMessage.get_current_message()
        route = Route.of(message) if message is not None else None
        if route is not None and route.unawaited:
            return  # nothing in the meeting waits for these ops: no query asks
        lane = route.backfill if route is not None else None
        for meeting_id, settled in pushed.settled_by_meeting().items():
            pipeline.enqueue_pushes(pushing.woken(runtime, settled, meeting_id, backfill=lane))

    # the middleware declares the `throttle` option, so it comes before the actors
    returns: dict[str, Actor[Any, Any]] = {}
    throttling = Throttling(runtime, returns.get, lambda m: _stored_route(runtime, m))
    broker.add_middleware(throttling)
    extract_lanes = _on_lanes(
        broker, extract, stage="extract", queue="extract", throttle="llm", **options
    )
    # planned on its meeting's lane too: a backfill's plans never queue before a live one
    plan = _on_lanes(broker, plan_meeting, stage="plan", queue="plan", **options)
    push_lanes = {
        name: _on_lanes(
            broker, push, stage=f"push_{name}", queue=f"push.{name}", throttle="push", **options
        )
        for name in available()
    }
    for lanes in (extract_lanes, *push_lanes.values()):
        for lane, actor in lanes.lanes():
            returns[actor.actor_name] = lanes.on(lane.returns)
    pipeline = Pipeline(
        broker=broker,
        runtime=runtime,
        extract=extract_lanes,
        plan=plan,
        push=push_lanes,
        throttling=throttling,
    )
    pipeline.review = declare_review(broker, runtime, pipeline.enqueue_ops, **options)
    broker.add_middleware(ReviewSweeper(runtime, pipeline.review))
    broker.add_middleware(Sweeper(pipeline))
    # first: it binds the message's context before every other hook and, as dramatiq runs
    # `after_*` hooks in reverse, clears it after them (a returns-lane send keeps it)
    broker.add_middleware(Tracing(), before=type(broker.middleware[0]))
    return pipeline


def _on_lanes(
    broker: Broker, fn: Callable[..., Any], *, stage: str, queue: str, **options: Any
) -> Laned:
    """`fn` declared once per lane: `push_slack`, `push_slack_backfill`, `push_slack_returns`."""

    def on(lane: Lane) -> Actor[Any, Any]:
        return dramatiq.actor(
            broker=broker,
            actor_name=lane.actor_name(stage),
            queue_name=lane.queue_name(queue),
            priority=lane.priority,
            **options,
        )(answering(fn))

    return Laned(
        live=on(Lane.LIVE),
        backfill=on(Lane.BACKFILL),
        returns=on(Lane.RETURNS),
        backfill_returns=on(Lane.BACKFILL_RETURNS),
    )


def _stored_route(runtime: Runtime, message: MessageProxy) -> Route | None:
    """The route of a message sent without one, from the database: an extraction enqueued
    by intake or a backfill (they know the meeting, not its org), or an older release's push."""
    first = message.args[0] if message.args else ""
    ref = str(first[0] if isinstance(first, list) and first else first)
    with runtime.session() as session:
        if message.actor_name.startswith("push_"):
            row = session.get(OpRecord, ref)
            if row is None:
                return None
            meeting = session.get(Meeting, row.meeting_id)
            return pushing.route_of(row, meeting is not None and meeting.source == "backfill")
        found = session.get(Meeting, ref)
        if found is None:
            return None
        return Route(org=found.org_id, backfill=found.source == "backfill")


def _fail_meeting(runtime: Runtime, meeting_id: str, reason: str, logged: str) -> None:
    """Failed with the full reason stored; the log says its kind (an LLM's message may
    quote the transcript)."""
    stages.fail_meeting(runtime, meeting_id, reason)
    outcomes.meeting_failed(meeting_id, "extract", logged)


def _provider() -> str:
    """The connector of the push being processed: `push_asana_backfill` → `asana`."""
    message = CurrentMessage.get_current_message()
    name = message.actor_name.removeprefix("push_") if message is not None else "unknown"
    for lane in (Lane.BACKFILL_RETURNS, Lane.BACKFILL, Lane.RETURNS):
        name = name.removesuffix("_" + lane.value.replace(".", "_"))
    return name


def _retries_left() -> bool:
    message = CurrentMessage.get_current_message()
    if message is None:
        return False
    max_retries = message.options.get("max_retries", 8)
    return int(message.options.get("retries", 0)) < int(max_retries)


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]
