"""What providers say about their limits, turned into cooldowns and token counts.

Retry-After: 30                              → cooldown 30 s, rate halved (on a 429)
x-ratelimit-remaining-requests: 12           → hold no more than 12 tokens
x-ratelimit-reset-requests: 1.5s / 6m0s / 20ms
Sforce-Limit-Info: api-usage=14200/15000     → hold no more than what is left above the
                                               reserve; none left → pause
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from connectors.base import Limits
from workers.throttle.buckets import Throttle

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# Salesforce's daily total refills over a rolling 24 h; with the reserve reached, look again
# after this long rather than hammering a budget that is spent.
SALESFORCE_HOLD_S = 900.0


def duration_s(value: str | None) -> float | None:
    """OpenAI's reset durations ("1s", "6m0s", "20ms") or plain seconds, in seconds."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if not parts:
        return None
    return sum(float(n) * _UNITS[unit] for n, unit in parts)


def sync(
    throttle: Throttle, bucket: str, left: float, hold_s: float, limits: Limits | None = None
) -> None:
    """Hold no more than the provider says is `left`. Skipped, with no round trip, when
    `left` covers all the bucket could hold (its burst) and every write it lets be in
    flight (its concurrency): the sync could change nothing. Salesforce's daily budget
    nearly always does (thousands of calls left against a burst of tens: every write sent
    one); an LLM's per-minute counts seldom exceed its bucket, so they are still synced."""
    if limits is not None and left >= limits.burst + limits.concurrency:
        return
    throttle.sync(bucket, left, hold_s=hold_s)


def on_rate_limited(throttle: Throttle, bucket: str, retry_after_s: float) -> int:
    """A 429: every worker waits out the provider's Retry-After; returns the wait in ms."""
    return throttle.penalize(bucket, retry_after_s)


def on_headers(
    throttle: Throttle, bucket: str, headers: Mapping[str, str], limits: Limits | None = None
) -> None:
    """OpenAI-style x-ratelimit-* headers on a successful response."""
    lowered = {k.lower(): v for k, v in headers.items()}
    remaining = lowered.get("x-ratelimit-remaining-requests")
    if remaining is not None and remaining.isdigit():
        hold = duration_s(lowered.get("x-ratelimit-reset-requests")) or 1.0
        sync(throttle, bucket, float(remaining), hold, limits)


def on_llm_headers(
    throttle: Throttle,
    requests_bucket: str,
    tokens_bucket: str,
    headers: Mapping[str, str],
    *,
    status: int,
    in_hand: Mapping[str, float],
    limits: Mapping[str, Limits] | None = None,
) -> None:
    """An LLM answer: a 429 cools the bucket that ran out; otherwise hold no more than is left.

    `in_hand` is what this worker reserved and has not sent yet: the provider's remaining
    count still includes it, so it is not ours to hand out again.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    kinds = {"requests": requests_bucket, "tokens": tokens_bucket}
    if status == 429:
        retry = _retry_after_s(lowered)
        empty = [b for k, b in kinds.items() if _number(lowered, f"remaining-{k}") == 0]
        for bucket in empty or list(kinds.values()):
            throttle.penalize(bucket, retry)
        return
    for kind, bucket in kinds.items():
        remaining = _number(lowered, f"remaining-{kind}")
        if remaining is None:
            continue
        limit = _number(lowered, f"limit-{kind}")
        reset = duration_s(lowered.get(f"x-ratelimit-reset-{kind}")) or 1.0
        # the reset header is the time to a full bucket; with none left, wait for one unit
        hold = reset / (limit - remaining) if limit and limit > remaining else reset
        left = remaining - in_hand.get(bucket, 0.0)
        sync(throttle, bucket, left, hold, (limits or {}).get(bucket))


def _number(lowered: Mapping[str, str], name: str) -> float | None:
    try:
        return float(lowered[f"x-ratelimit-{name}"])
    except (KeyError, ValueError):
        return None


def _retry_after_s(lowered: Mapping[str, str]) -> float:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return max(0.0, float(lowered[name]) * scale)
        except (KeyError, ValueError):
            continue
    return 1.0


def on_salesforce_usage(
    throttle: Throttle,
    bucket: str,
    used: int,
    limit: int,
    reserve_share: float,
    limits: Limits | None = None,
) -> None:
    """Sforce-Limit-Info: spend the daily budget down to the reserve, never into it."""
    usable_left = limit * (1.0 - reserve_share) - used
    sync(throttle, bucket, usable_left, SALESFORCE_HOLD_S, limits)


def parse_sforce_limit_info(value: str | None) -> tuple[int, int] | None:
    """`api-usage=25/15000` → (25, 15000)."""
    if not value or "api-usage=" not in value:
        return None
    used, _, limit = value.split("api-usage=", 1)[1].split(";", 1)[0].strip().partition("/")
    if used.isdigit() and limit.isdigit():
        return int(used), int(limit)
    return None
