"""connectors/provider_clock.py: how far our clock runs ahead of a provider's."""

from __future__ import annotations

from datetime import timedelta
from email.utils import formatdate

from connectors.provider_clock import SLACK, ProviderClock

WIDE = timedelta(minutes=10)


def test_an_unmeasured_clock_keeps_the_wide_margin() -> None:
    clock = ProviderClock()
    clock.observe(None)
    clock.observe("not a date")
    assert not clock.known
    assert clock.margin(WIDE) == WIDE


def test_a_provider_behind_us_widens_the_margin_by_that_much() -> None:
    # given answers dated 90 s before we received them (its clock is 90 s behind ours)
    clock = ProviderClock()
    clock.observe(formatdate(1_000_000_000, usegmt=True), received=1_000_000_090.4)

    # expect the margin to cover it, and no less
    assert clock.known
    assert clock.margin(WIDE) == timedelta(seconds=90.4) + SLACK


def test_a_provider_ahead_of_us_needs_only_the_slack() -> None:
    clock = ProviderClock()
    clock.observe(formatdate(1_000_000_030, usegmt=True), received=1_000_000_000.0)
    assert clock.margin(WIDE) == SLACK
    # a malformed header later leaves the measurement as it was
    clock.observe("Tue, 99 Foo 2026")
    assert clock.margin(WIDE) == SLACK
