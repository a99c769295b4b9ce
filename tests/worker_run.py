"""Run one message the way a dramatiq worker thread does: through every middleware."""

from __future__ import annotations

from typing import Any

from dramatiq import Actor
from dramatiq.broker import MessageProxy


def run_message(actor: Actor[Any, Any], *args: Any, **options: Any) -> Any:
    """Process a message of `actor` now, in this thread, hooks before and after included."""
    broker = actor.broker
    proxy = MessageProxy(actor.message_with_options(args=args, **options))
    broker.emit_before("process_message", proxy)
    try:
        result = actor.fn(*args)
    except Exception as exc:
        broker.emit_after("process_message", proxy, exception=exc)
        raise
    broker.emit_after("process_message", proxy, result=result)
    return result
