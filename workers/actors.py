"""Thin dramatiq actors: load ids, call a stage, enqueue the next step."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import dramatiq
from dramatiq import Actor, Broker
from dramatiq.middleware import CurrentMessage

from connectors.errors import Transient
from connectors.registry import available
from extraction.errors import LLMInvalidOutput, LLMRateLimited, LLMRefused, LLMRequestRejected
from extraction.llm import gated
from mappings import MappingError, PlanError
from meetsync.transcripts import TranscriptUnavailable
from workers import stages
from workers.runtime import Runtime
from workers.sweeper import Sweeper
from workers.throttle.gate import PushGate
from workers.throttle.llm import LLMGate, LLMWait

log = logging.getLogger(__name__)

BACKFILL_PRIORITY = 10  # higher runs later; live meetings use 0
# A wait comes back on its own queue and runs before new work: a turn the throttle handed
# out is lost if the message holding it sits behind a backlog (50,000 backfilled meetings,
# or a burst of webhooks) in the broker or in a worker's prefetch.
RETURN_PRIORITY = -10
LANE_PRIORITY = {"live": 0, "backfill": BACKFILL_PRIORITY, "returns": RETURN_PRIORITY}


@dataclass
class Pipeline:
    """The declared actors of one broker, and how to start the flow."""

    broker: Broker
    runtime: Runtime
    extract: Actor
    plan: Actor
    push: dict[str, Actor]
    push_backfill: dict[str, Actor] = field(default_factory=dict)
    push_returns: dict[str, Actor] = field(default_factory=dict)
    llm_gate: LLMGate | None = None
    push_gate: PushGate | None = None
    extract_backfill: Actor | None = None

    def enqueue_extract(self, meeting_id: str, *, backfill: bool = False) -> None:
        # backfill has its own queue: a live meeting never waits behind 50,000 replayed ones
        actor = self.extract_backfill if backfill and self.extract_backfill else self.extract
        actor.send(meeting_id)


def _retries_left() -> bool:
    message = CurrentMessage.get_current_message()
    if message is None:
        return False
    max_retries = message.options.get("max_retries", 8)
    return int(message.options.get("retries", 0)) < int(max_retries)


def _on_lane(
    broker: Broker,
    name: str,
    queue: str,
    lane: str,
    fn: Callable[..., None],
    options: dict[str, Any],
) -> Actor:
    """`fn` as the actor of one lane: `push_slack` on queue push.slack (live),
    `push_slack_backfill` on push.slack.backfill, `push_slack_returns` on push.slack.returns."""
    live = lane == "live"
    return dramatiq.actor(
        broker=broker,
        actor_name=name if live else f"{name}_{lane}",
        queue_name=queue if live else f"{queue}.{lane}",
        priority=LANE_PRIORITY[lane],
        **options,
    )(fn)


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
        "throws": (stages.MeetingGone,),
    }
    push_actors: dict[str, Actor] = {}
    push_backfill: dict[str, Actor] = {}
    push_returns: dict[str, Actor] = {}

    llm_gate = LLMGate.for_runtime(runtime)

    def extract(meeting_id: str, tickets: dict[str, int] | None = None) -> None:
        admission = llm_gate.admission(meeting_id, tickets or {})
        try:
            with gated(admission):
                stages.extract(runtime, meeting_id)
        except LLMWait as wait:
            # the model's RPM/TPM: come back at the turn, keep the retries
            extract_return.send_with_options(
                args=(meeting_id,), kwargs={"tickets": wait.tickets}, delay=wait.wait_ms
            )
            return
        except LLMRateLimited as exc:
            # waiting for the provider is not a failure: come back later, keep the retries
            extract_return.send_with_options(args=(meeting_id,), delay=int(exc.retry_after * 1000))
            return
        except (LLMInvalidOutput, LLMRefused, LLMRequestRejected, TranscriptUnavailable) as exc:
            # retrying cannot fix a refusal, a bad schema answer, a bad key or model, or a
            # transcript URL we may not fetch
            stages.fail_meeting(runtime, meeting_id, f"{type(exc).__name__}: {exc}")
            return
        finally:
            admission.close()
        plan_actor.send(meeting_id)

    def plan(meeting_id: str) -> None:
        try:
            planned_ops = stages.plan(runtime, meeting_id)
        except (PlanError, MappingError) as exc:
            # a template over its budget (or data the mapping cannot take): retrying cannot
            # help; the reason is the meeting's error, for the admin to fix the mapping
            stages.fail_meeting(runtime, meeting_id, f"the mapping cannot plan it: {exc}")
            return
        for planned in planned_ops:
            push_actors[planned.connector].send(planned.key)

    gate = PushGate.for_runtime(runtime)

    def follow_up(later: Actor, key: str, outcome: stages.PushOutcome) -> None:
        """Throttled, busy (another delivery holds the op) or waiting (a recap for the
        records it links): look again later, never write alongside; the rest is final."""
        if outcome.state in {"throttled", "busy", "waiting"} and outcome.retry_after is not None:
            later.send_with_options(args=(key,), delay=max(1, int(outcome.retry_after * 1000)))

    def make_push(name: str, lane: str) -> Actor:
        def push(key: str, ticket: int = 0) -> None:
            ask = gate.ask(key)
            if ask is not None and ask.backfill and lane == "live":
                # backfill has its own queue, so live ops never wait behind it in the broker
                push_backfill[name].send_with_options(args=(key,))
                return
            later = push_returns[name]
            if ask is not None and (early := stages.precheck(runtime, key)) is not None:
                follow_up(later, key, early)
                return
            decision = gate.admit(ask, ticket) if ask is not None else None
            if decision is not None and not decision.granted:
                # waiting is not a failure: come back at the turn, keep the retries
                later.send_with_options(
                    args=(key,),
                    kwargs={"ticket": decision.ticket},
                    delay=gate.delay_ms(decision),
                )
                return
            try:
                outcome = stages.push(runtime, key)
            except Transient as exc:
                if _retries_left():
                    stages.record_error(runtime, key, str(exc))
                    raise
                stages.give_up(runtime, key, f"retries exhausted: {exc}")
                return
            finally:
                if ask is not None and decision is not None:
                    gate.done(ask, decision)
            if outcome.state == "throttled" and outcome.retry_after is not None and ask:
                # the provider's 429 cools the bucket for every worker, not just this op
                outcome = replace(
                    outcome, retry_after=gate.rate_limited(ask, outcome.retry_after) / 1000
                )
            follow_up(later, key, outcome)

        return _on_lane(broker, f"push_{name}", f"push.{name}", lane, push, options)

    extract_actor, extract_backfill, extract_return = (
        _on_lane(broker, "extract", "extract", lane, extract, options) for lane in LANE_PRIORITY
    )
    plan_actor = dramatiq.actor(broker=broker, actor_name="plan", queue_name="plan", **options)(
        plan
    )
    for name in available():
        push_actors[name] = make_push(name, "live")
        push_backfill[name] = make_push(name, "backfill")
        push_returns[name] = make_push(name, "returns")
    pipeline = Pipeline(
        broker,
        runtime,
        extract_actor,
        plan_actor,
        push_actors,
        push_backfill,
        push_returns,
        llm_gate,
        gate,
        extract_backfill,
    )
    broker.add_middleware(Sweeper(pipeline))
    return pipeline
