"""The throttle as dramatiq middleware: a throttled message takes its turn from the buckets.

An actor opts in with its `throttle` option (the idiom of dramatiq's `AgeLimit`):

- `"push"`: a message's writes take a token each and one slot of its connection's bucket.
  The turn is taken lazily, when the stage knows how many ops it is about to write
  (`take_turn(n)`), so a push answered without the provider (settled, paused, a recap
  waiting for its links) spends nobody's turn.
- `"llm"`: an extraction is admitted at its first model call, for all of it
  (`workers.throttle.llm`).

Before the actor runs, the middleware builds the admission from the message's route (no
database read) and the ticket it came back with. After it, the middleware releases what
was held, passes on what the provider said (a 429 cools the bucket for every worker;
`api_usage` spends a daily budget down to its reserve), and sends a `Later` answer back on
the stage's returns lane with its delay: no thread sleeps and no retry is spent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import ExitStack
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

import dramatiq
from dramatiq import Actor, Broker
from dramatiq.broker import MessageProxy

from extraction.llm import gated
from meetsync import metrics
from workers.lanes import Later, Route, take_answer
from workers.runtime import Runtime
from workers.throttle.buckets import Ask, Decision, Throttle, admit, redelivery_ms
from workers.throttle.feedback import on_rate_limited, on_salesforce_usage
from workers.throttle.limits import ask_for_op, make_throttle
from workers.throttle.llm import Admission

log = logging.getLogger(__name__)


@dataclass
class Turn:
    """One push's turn in its bucket, taken at most once, when the stage is about to write."""

    throttle: Throttle
    ask: Ask
    ticket: int = 0
    decision: Decision | None = None

    def take(self, cost: int = 1) -> bool:
        """Granted now for `cost` writes (one token each; a slot each of those one request
        sends at once, held until the message ends), or not yet."""
        if self.decision is None:
            width = max(1, min(cost, self.ask.width))
            self.ask = replace(self.ask, cost=float(cost), width=width)
            self.decision = admit(self.throttle, self.ask, self.ticket)
        return self.decision.granted


_turn: ContextVar[Turn | None] = ContextVar("push_turn", default=None)


def take_turn(cost: int = 1) -> bool:
    """The current push's turn for `cost` writes (True outside a throttled message: tests,
    the CLI)."""
    turn = _turn.get()
    return True if turn is None else turn.take(cost)


@dataclass
class _Held:
    route: Route
    turn: Turn | None = None
    admission: Admission | None = None
    stack: ExitStack | None = None


class Throttling(dramatiq.Middleware):
    """Admits throttled actors' messages; sends their `Later` answers back on returns."""

    def __init__(
        self,
        runtime: Runtime,
        returns: Callable[[str], Actor[Any, Any] | None],
        route_of: Callable[[MessageProxy], Route | None],
    ) -> None:
        self.runtime = runtime
        self.throttle = make_throttle(runtime.settings)
        self.returns = returns  # actor name → the returns-lane actor of its stage
        self.route_of = route_of  # a message sent without a route (an older release)
        self._local = threading.local()

    @property
    def actor_options(self) -> set[str]:
        return {"throttle"}

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        kind = broker.get_actor(message.actor_name).options.get("throttle")
        self._local.held = None
        if kind is None:
            return
        route = Route.of(message) or self.route_of(message)
        if route is None:
            return  # the op or meeting is gone; the stage says so
        held = _Held(route)
        if kind == "push":
            ask = ask_for_op(
                self.runtime.settings,
                connector=route.connector,
                connection=route.connection,
                org=route.org,
                target={"channel": route.channel} if route.channel else {},
                backfill=route.backfill,
            )
            held.turn = Turn(self.throttle, ask, int(message.options.get("ticket", 0)))
            _turn.set(held.turn)
        else:
            tickets = dict(message.options.get("tickets") or {})
            held.admission = Admission(
                self.runtime.settings, self.throttle, route.org, route.backfill, tickets
            )
            held.stack = ExitStack()
            held.stack.enter_context(gated(held.admission))
        self._local.held = held

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        held: _Held | None = getattr(self._local, "held", None)
        self._local.held = None
        later = take_answer()
        if held is not None:
            later = self._settle(held, later)
        if later is not None and exception is None:
            self._send_back(message, later)

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        self.after_process_message(broker, message)

    def _settle(self, held: _Held, later: Later | None) -> Later | None:
        """Give back what the message held; the wait its answer comes back after."""
        if held.stack is not None:
            held.stack.close()
        if held.admission is not None:
            held.admission.close()
        turn = held.turn
        if turn is None:
            return later
        _turn.set(None)
        decision = turn.decision
        if decision is not None and decision.granted:
            self.throttle.release(turn.ask, decision.lease)
            self._feed_usage(held.route, turn.ask)
        if later is None:
            return None
        if later.reason == "queued" and decision is not None and not decision.granted:
            # not our turn yet: come back for it with the ticket that keeps our place
            delay = redelivery_ms(self.throttle, decision)
            metrics.THROTTLE_WAIT.labels(turn.ask.bucket).observe(delay / 1000)
            return replace(later, delay_ms=delay, options={"ticket": decision.ticket})
        if later.reason == "throttled":
            # the provider's 429 cools the bucket for every worker, not just this op
            wait_ms = on_rate_limited(self.throttle, turn.ask.bucket, later.delay_ms / 1000)
            log.info("throttle %s cooling down %d ms", turn.ask.bucket, wait_ms)
            metrics.THROTTLE_WAIT.labels(turn.ask.bucket).observe(wait_ms / 1000)
            return replace(later, delay_ms=max(wait_ms, 1))
        return later

    def _feed_usage(self, route: Route, ask: Ask) -> None:
        """A provider's own budget report (Salesforce's daily API calls), if it gives one."""
        connector = self.runtime.connectors.cached(route.connection)
        usage = getattr(connector, "api_usage", None)
        if usage:
            used, limit = usage
            share = self.runtime.settings.throttle.salesforce_reserve_share
            on_salesforce_usage(self.throttle, ask.bucket, used, limit, share, ask.limits)

    def _send_back(self, message: MessageProxy, later: Later) -> None:
        actor = self.returns(message.actor_name)
        if actor is None:
            return
        options = {k: v for k, v in message.options.items() if k == "route"}
        actor.send_with_options(
            args=message.args,
            kwargs=message.kwargs,
            delay=max(0, later.delay_ms),
            **options,
            **later.options,
        )
