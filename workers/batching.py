"""Which ops travel together: one message per meeting and route, within the bucket's burst.

A meeting's ops for one connection (and Slack channel) share their throttle bucket, lane
and connector, so one push message can carry them (`workers.pushing`): one read, one
claim, one turn of `n` tokens and one record instead of `n` of each. A message never asks
for more tokens than its bucket (or its flow) can ever hold, nor more ops than
`throttle.push_batch`, so a batch is always granted eventually and its writes stay
within the provider's burst.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from meetsync.settings import Settings
from workers.lanes import Route
from workers.pushing import Planned
from workers.throttle.limits import ask_for_op


@dataclass(frozen=True)
class Batch:
    """Op keys for one push message, with the route they share."""

    route: Route
    keys: list[str]

    @property
    def connector(self) -> str:
        return self.route.connector


def batches(settings: Settings, planned: Iterable[Planned]) -> list[Batch]:
    """`planned` grouped by meeting and route, in order, each group cut to its largest size.

    A batch is awaited (its settling may wake a recap) when any of its ops is.
    """
    groups: dict[tuple[str, Route], list[Planned]] = {}
    for item in planned:
        # an op without its meeting travels alone
        group = item.meeting_id or item.key
        groups.setdefault((group, replace(item.route, unawaited=False)), []).append(item)
    out: list[Batch] = []
    for (_, route), items in groups.items():
        size = largest(settings, route)
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            unawaited = all(item.route.unawaited for item in chunk)
            out.append(Batch(replace(route, unawaited=unawaited), [i.key for i in chunk]))
    return out


def largest(settings: Settings, route: Route) -> int:
    """Most ops one message of this route may carry: the setting, within the burst of its
    bucket and of its flow (a Slack channel's few messages)."""
    ask = ask_for_op(
        settings,
        connector=route.connector,
        connection=route.connection,
        org=route.org,
        target={"channel": route.channel} if route.channel else {},
        backfill=route.backfill,
    )
    bursts = [ask.limits.burst] + ([ask.flow_limits.burst] if ask.flow_limits else [])
    return max(1, min(settings.throttle.push_batch, *(int(b) for b in bursts)))
