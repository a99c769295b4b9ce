"""Lanes: the queues a stage's messages travel on, and the one place that picks them.

dramatiq orders a worker's work by actor priority, so each stage (extract, plan,
and the push of every connector) is declared once per lane:

| lane             | actor                         | queue                         | priority |
| ---------------- | ----------------------------- | ----------------------------- | -------- |
| live             | `push_slack`                  | `push.slack`                  | 0        |
| backfill         | `push_slack_backfill`         | `push.slack.backfill`         | 10       |
| returns          | `push_slack_returns`          | `push.slack.returns`          | -10      |
| backfill returns | `push_slack_backfill_returns` | `push.slack.backfill.returns` | 5        |

(`extract`, `extract_backfill` and `extract_returns` the same way.) The lane is picked
once, by whoever enqueues: a backfilled meeting's messages start on backfill; a message
that must wait (the throttle's turn, a busy op, a recap's links, the LLM's budget) comes
back on returns, where a turn handed out is not lost behind a backlog; a backfill's waits
come back on backfill returns, so they never take a live worker's turn (`meetsync worker
--lane backfill` serves both backfill queues).

A message carries ids, plus its *route*: the org, connector, connection and channel that
choose its throttle bucket, so the throttle needs no database read to admit it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import wraps
from typing import Any

from dramatiq import Actor, Message
from dramatiq.broker import MessageProxy

from connectors.registry import available


class Lane(StrEnum):
    LIVE = "live"
    BACKFILL = "backfill"
    RETURNS = "returns"
    BACKFILL_RETURNS = "backfill.returns"

    @property
    def priority(self) -> int:
        """Lower runs first inside a worker: returns, live, backfill's returns, backfill."""
        return {"live": 0, "backfill": 10, "returns": -10, "backfill.returns": 5}[self.value]

    def actor_name(self, stage: str) -> str:
        """`push_slack` → `push_slack_backfill` (live keeps the stage's own name)."""
        return stage if self is Lane.LIVE else f"{stage}_{self.value.replace('.', '_')}"

    def queue_name(self, queue: str) -> str:
        """`push.slack` → `push.slack.returns` (live keeps the stage's own queue)."""
        return queue if self is Lane.LIVE else f"{queue}.{self.value}"

    @property
    def returns(self) -> Lane:
        """Where a message of this lane comes back when it must wait: a backfill's waits
        stay with backfill work, so they never take a live worker's turn."""
        backfill = self in (Lane.BACKFILL, Lane.BACKFILL_RETURNS)
        return Lane.BACKFILL_RETURNS if backfill else Lane.RETURNS

    @classmethod
    def of(cls, backfill: bool) -> Lane:
        return cls.BACKFILL if backfill else cls.LIVE


REVIEW_QUEUE = "review"


def is_backfill_queue(queue_name: str) -> bool:
    """A queue of the backfill lanes (`extract.backfill`, `push.slack.backfill.returns.DQ`)."""
    parts = queue_name.split(".")
    return Lane.BACKFILL.value in parts[1:]


def lane_group(backfill: bool) -> tuple[Lane, Lane]:
    """A kind of work's lane and where its waits come back."""
    return (Lane.BACKFILL, Lane.BACKFILL_RETURNS) if backfill else (Lane.LIVE, Lane.RETURNS)


def lane_queues(lane: Lane, connectors: list[str] | None = None) -> list[str]:
    """The queues a worker serving `lane` consumes: `live` takes everything but backfill
    (fresh work, returns, and the unlaned review queue), `backfill` only the
    backfill queues, so a deployment of its own (or `meetsync worker --nice`) can yield
    the cores to live work."""
    names = sorted(available()) if connectors is None else connectors  # installed ones
    laned = ["extract", "plan", *(f"push.{name}" for name in names)]
    if lane in (Lane.BACKFILL, Lane.BACKFILL_RETURNS):
        return [waiting.queue_name(q) for waiting in lane_group(True) for q in laned]
    returns = [Lane.RETURNS.queue_name(q) for q in laned]
    return [*laned, *returns, REVIEW_QUEUE]


@dataclass(frozen=True)
class Route:
    """What picks a message's throttle bucket: who, which provider and credential, where."""

    org: str = ""
    connector: str = ""
    connection: str = ""
    channel: str | None = None
    backfill: bool = False
    # nothing in its meeting waits for this op: settling it wakes no one, so no query asks
    unawaited: bool = False

    def options(self) -> dict[str, Any]:
        return {"route": {k: v for k, v in vars(self).items() if v not in (None, "", False)}}

    @classmethod
    def of(cls, message: Message[Any] | MessageProxy) -> Route | None:
        """The route a message was sent with; None for one sent without (an older release)."""
        raw = message.options.get("route")
        return cls(**raw) if isinstance(raw, dict) and raw.get("org") else None


@dataclass(frozen=True)
class Later:
    """An actor's answer: come back on the returns lane in `delay_ms`, keeping `options`."""

    delay_ms: int
    reason: str
    options: dict[str, Any] = field(default_factory=dict)


# the answer of the message this worker thread is processing: handed to the middleware
# beside dramatiq's result, which would warn on every come-back that no Results backend
# stores it
_answers = threading.local()


def answering(fn: Callable[..., Later | None]) -> Callable[..., None]:
    """`fn` as an actor: its `Later` answer kept for `take_answer`, nothing returned."""

    @wraps(fn)
    def actor_fn(*args: Any, **kwargs: Any) -> None:
        _answers.later = fn(*args, **kwargs)

    return actor_fn


def take_answer() -> Later | None:
    """The answer of the message just processed on this thread (once), if it had one."""
    later: Later | None = getattr(_answers, "later", None)
    _answers.later = None
    return later


@dataclass(frozen=True)
class Laned:
    """One stage's actors, one per lane."""

    live: Actor[Any, Any]
    backfill: Actor[Any, Any]
    returns: Actor[Any, Any]
    backfill_returns: Actor[Any, Any]

    def on(self, lane: Lane) -> Actor[Any, Any]:
        return {
            Lane.LIVE: self.live,
            Lane.BACKFILL: self.backfill,
            Lane.RETURNS: self.returns,
            Lane.BACKFILL_RETURNS: self.backfill_returns,
        }[lane]

    def lanes(self) -> list[tuple[Lane, Actor[Any, Any]]]:
        return [(lane, self.on(lane)) for lane in Lane]

    def send(
        self, *args: Any, route: Route | None, lane: Lane | None = None, delay: int | None = None
    ) -> Message[Any]:
        """Enqueue on `lane`, or on the route's own lane (backfill or live)."""
        actor = self.on(lane or Lane.of(route is not None and route.backfill))
        carried = route.options() if route is not None else {}
        return actor.send_with_options(args=args, delay=delay, **carried)
