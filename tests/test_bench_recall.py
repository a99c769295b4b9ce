"""bench.recall runs on PostgreSQL and recalls the people its meeting names."""

from __future__ import annotations

import pytest

from bench.recall import measure, person

pytestmark = pytest.mark.integration


def test_the_recall_bench_recalls_the_people_its_meeting_names() -> None:
    figures = measure(people=60, commitments=20, turns=160, rounds=1)
    assert figures["people"] == 60 and figures["recall_cpu_ms"] > 0
    # the three people it names (one misspelled once), not the others with their first names
    assert figures["people_recalled"] == 3
    assert len({person(k)[0] for k in range(60)}) == 60  # distinct names
