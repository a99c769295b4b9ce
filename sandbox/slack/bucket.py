"""A token bucket on the monotonic clock, for chat.postMessage's rate limits.

The store keeps one per channel and one for the workspace; a post needs a token from both.
"""

from __future__ import annotations

import time


class _Bucket:
    """A token bucket on the monotonic clock."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = float(burst), time.monotonic()

    def wait(self) -> float:
        """Seconds until a token is available; 0 when one is there now."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate
