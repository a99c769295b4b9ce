"""How a Slack call fails: `_SlackError` (HTTP 200, `ok: false`) or `_RateLimited` (429).

Both are raised inside a method and rendered by the app: an API error with its `error` code
and any extra fields, a rate limit with Retry-After in whole seconds.
"""

from __future__ import annotations

import math
from typing import Any


class _SlackError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error, self.extra = error, extra


class _RateLimited(Exception):
    def __init__(self, wait: float) -> None:
        super().__init__(wait)
        self.retry_after = max(1, math.ceil(wait))
