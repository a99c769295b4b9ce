"""How far this host's clock runs ahead of a provider's, read from its answers' `Date`.

A lookup that filters by the provider's own timestamps (Asana's `modified_since`) must
start early enough for the provider's clock: a task we wrote at our 12:00:05 carries
Asana's time, which is earlier if our clock runs ahead. `Date` has whole seconds and is
read after the answer arrived, so `received - Date` never understates how far ahead we
are: the margin it gives errs wide, never short.
"""

from __future__ import annotations

import time
from datetime import timedelta
from email.utils import parsedate_to_datetime

SLACK = timedelta(seconds=5)  # beyond the measured offset: clocks across a provider's fleet


class ProviderClock:
    """The latest offset measured from a provider's `Date` headers (one per connector)."""

    def __init__(self) -> None:
        self.ahead_s: float | None = None  # our clock minus the provider's, at the last answer

    def observe(self, date_header: str | None, received: float | None = None) -> None:
        """An answer's `Date` header, received at `received` (epoch seconds, now if None)."""
        if not date_header:
            return
        try:
            sent = parsedate_to_datetime(date_header).timestamp()
        except (TypeError, ValueError):
            return  # a malformed header says nothing; the last offset stands
        self.ahead_s = (time.time() if received is None else received) - sent

    @property
    def known(self) -> bool:
        return self.ahead_s is not None

    def margin(self, unknown: timedelta) -> timedelta:
        """How far before one of our moments the provider's clock may read it: `unknown`
        until an answer was measured."""
        if self.ahead_s is None:
            return unknown
        return timedelta(seconds=max(self.ahead_s, 0.0)) + SLACK
