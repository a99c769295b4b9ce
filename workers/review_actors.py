"""The review actors: thin adapters around `workers.review`'s stages.

| actor            | queue    | stage                                                       |
| ---------------- | -------- | ----------------------------------------------------------- |
| `review_prepare` | `review` | read held ops' records, release or ask, post the message    |
| `review_refresh` | `review` | show decisions and links; again while a released write flies |
| `review_expire`  | `review` | record overdue requests as skipped (delayed to their time)  |
| `review_remind`  | `review` | one reminder in the message's thread (delayed)               |
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq import Actor, Broker

from workers import review_ask, review_message
from workers.lanes import REVIEW_QUEUE
from workers.runtime import Runtime

MAX_REFRESH_ROUNDS = 120  # about two minutes of a write in flight before the message rests


@dataclass(frozen=True)
class ReviewActors:
    prepare: Actor[Any, Any]
    refresh: Actor[Any, Any]
    expire: Actor[Any, Any]
    remind: Actor[Any, Any]

    def after_plan(self, runtime: Runtime, meeting_id: str) -> None:
        """Ask about the meeting's held ops, if the plan held any nobody was asked about."""
        if review_ask.unannounced(runtime, meeting_id):
            self.prepare.send(meeting_id)


def declare_review(
    broker: Broker,
    runtime: Runtime,
    enqueue_ops: Callable[[Iterable[str]], int],
    **options: Any,
) -> ReviewActors:
    """Declare the review actors on `broker`."""

    def on_queue(fn: Callable[..., Any], name: str) -> Actor[Any, Any]:
        declared = dramatiq.actor(
            broker=broker, actor_name=name, queue_name=REVIEW_QUEUE, **options
        )
        return declared(fn)

    def prepare(meeting_id: str) -> None:
        done = review_ask.prepare(runtime, meeting_id)
        if done.released:
            enqueue_ops(done.released)
        if done.asked:
            refresh_actor.send(meeting_id, 0)
        if done.remind_in_s is not None:
            remind_actor.send_with_options(args=(meeting_id,), delay=_ms(done.remind_in_s))
        if done.expire_in_s is not None:
            expire_actor.send_with_options(args=(meeting_id,), delay=_ms(done.expire_in_s))

    def refresh(meeting_id: str, rounds: int = 0) -> None:
        if review_message.refresh(runtime, meeting_id) and rounds < MAX_REFRESH_ROUNDS:
            refresh_actor.send_with_options(
                args=(meeting_id, rounds + 1), delay=_ms(review_message.REFRESH_S)
            )

    def expire(meeting_id: str) -> None:
        expired = review_message.expire(runtime, meeting_id)
        if expired.count:
            refresh_actor.send(meeting_id, 0)
        if expired.next_in_s is not None:
            expire_actor.send_with_options(args=(meeting_id,), delay=_ms(expired.next_in_s))

    def remind(meeting_id: str) -> None:
        review_message.remind(runtime, meeting_id)

    prepare_actor = on_queue(prepare, "review_prepare")
    refresh_actor = on_queue(refresh, "review_refresh")
    expire_actor = on_queue(expire, "review_expire")
    remind_actor = on_queue(remind, "review_remind")
    return ReviewActors(prepare_actor, refresh_actor, expire_actor, remind_actor)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000) + 50)
