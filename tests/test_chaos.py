"""The chaos harness, small: 100 meetings under every fault, nothing duplicated or missing.

Real PostgreSQL, Redis (db 13) and `meetsync worker` processes; a worker SIGKILLed every
few seconds, 5% 5xx, 2% lost responses, 1% timeouts, one Redis restart (queues lost) and
one PostgreSQL restart mid-run. `python -m bench.chaos --meetings 1000` is the full run.
"""

from __future__ import annotations

import pytest

from bench.chaos import ChaosConfig, run


@pytest.mark.slow
@pytest.mark.integration
def test_a_hundred_meetings_under_chaos_land_exactly_once() -> None:
    # given 100 meetings, one in twenty delivered twice, through faults, kills and restarts
    config = ChaosConfig(meetings=100, workers=3, seed=11, timeout_s=150)

    # when the run converges
    figures = run(config, log=lambda line: None)

    # expect every expected op in the sandbox exactly once, and nothing else
    assert figures["expected_ops"] > 500
    assert (figures["duplicates"], figures["missing"], figures["extra"]) == (0, 0, 0), figures
    # the only dead letters are the ops the provider refuses by their data in any run
    assert figures["dead_letters"] == figures["refused"], figures
