"""The log context travels with the meeting: through every queue, into every message.

On enqueue the middleware copies the sender's correlation id, org and meeting into the
message's `trace` option (a retry or a returns-lane message keeps the one it had); before
a message runs it binds them again, with what the message itself names (the meeting of
an extraction or plan, the op and provider of a push), so every log line and provider call
of that message carries them. It also observes how long the message waited in its queue
past its due time: the queue's age as workers see it.
"""

from __future__ import annotations

import time
from typing import Any

import dramatiq
from dramatiq import Broker, Message
from dramatiq.broker import MessageProxy

from meetsync import metrics
from meetsync.logging import context, new_correlation_id, replace_context

CARRIED = ("correlation_id", "org", "meeting")


class Tracing(dramatiq.Middleware):
    """Carries the log context in `message.options["trace"]`; binds it around each message."""

    def before_enqueue(self, broker: Broker, message: Message[Any], delay: int) -> None:
        if "trace" in message.options:
            return
        bound = context()
        trace = {k: bound[k] for k in CARRIED if k in bound}
        trace.setdefault("correlation_id", new_correlation_id())
        message.options["trace"] = trace

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        replace_context(fields_of(message))
        due_ms = message.options.get("eta") or message.message_timestamp
        waited = max(0.0, time.time() - int(due_ms) / 1000)
        metrics.QUEUE_WAIT.labels(message.queue_name).observe(waited)

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        replace_context({})

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        replace_context({})


def fields_of(message: MessageProxy | Message[Any]) -> dict[str, Any]:
    """The log context of a message: its trace, plus the ids its arguments name."""
    fields: dict[str, Any] = dict(message.options.get("trace") or {})
    route = message.options.get("route") or {}
    fields.setdefault("org", route.get("org"))
    ref = str(message.args[0]) if message.args else None
    if message.actor_name.startswith("push_"):
        fields["op"] = ref
        fields["provider"] = route.get("connector")
    else:
        fields["meeting"] = fields.get("meeting") or ref
    return fields
