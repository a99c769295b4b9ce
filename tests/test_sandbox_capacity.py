"""The capacity benchmark runs end to end and prints its figures (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

BENCH = [sys.executable, "-m", "bench.sandbox", "--warmup", "0.1"]


def test_the_capacity_bench_ends_with_writes_per_second_per_provider() -> None:
    finished = subprocess.run(
        [*BENCH, "--providers", "asana,slack", "--seconds", "0.3", "--connections", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    figures = json.loads(finished.stdout.strip().splitlines()[-1])

    assert set(figures["writes_per_s"]) == {"asana", "slack"}
    assert all(rate > 0 for rate in figures["writes_per_s"].values())
    assert "writes/s" in finished.stdout
