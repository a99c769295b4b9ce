"""Asana's two limits for one token: a per-minute request budget and concurrent writes.

`TokenLimiter` admits or refuses each request (a refusal says how long to wait, answered as
429 with Retry-After) and is told when an admitted write ends; the app keeps one per token.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenLimiter:
    """Asana's two limits for one token: a per-minute request budget and concurrent writes."""

    def __init__(
        self,
        per_minute: int,
        concurrent_writes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = float(per_minute)
        self.refill = per_minute / 60.0
        self.tokens = self.capacity
        self.max_writes = concurrent_writes
        self.writes = 0
        self.clock = clock
        self.stamp = clock()

    def admit(self, write: bool) -> float | None:
        """None when the request may proceed; otherwise the seconds until it could."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.refill)
        self.stamp = now
        if write and self.writes >= self.max_writes:
            return 1.0  # a write slot frees as soon as any in-flight write ends
        if self.tokens < 1.0:
            return (1.0 - self.tokens) / self.refill
        self.tokens -= 1.0
        if write:
            self.writes += 1
        return None

    def admit_many(self, requests: int, writes: int) -> float | None:
        """`admit` for a batch of `requests` (`writes` of them writes): all, or none and
        the seconds until all could (Asana refuses the whole batch)."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.refill)
        self.stamp = now
        if writes and self.writes + writes > self.max_writes:
            return 1.0
        if self.tokens < requests:
            return (requests - self.tokens) / self.refill
        self.tokens -= requests
        self.writes += writes
        return None

    def release(self) -> None:
        """An admitted write has finished."""
        self.writes = max(0, self.writes - 1)
