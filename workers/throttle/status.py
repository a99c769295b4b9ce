"""`meetsync status throttles`: tokens, waits and cooldowns of every bucket."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rich.table import Table

from meetsync.settings import Settings
from workers.throttle.limits import make_throttle


def throttle_status(settings: Settings) -> list[dict[str, Any]]:
    """Every bucket the workers have used, as plain data."""
    return [asdict(s) for s in make_throttle(settings).status()]


def render(rows: list[dict[str, Any]]) -> Table:
    """A rich table of `throttle_status` rows."""
    table = Table(title="throttles")
    columns = (
        "bucket",
        "rate/s",
        "tokens",
        "slots",
        "flows",
        "cooldown",
        "granted",
        "waits",
        "why",
    )
    for column in columns:
        # at 80 columns rich would cut a bucket to "asana…": fold it onto more lines instead
        left = column in {"bucket", "why"}
        table.add_column(column, justify="left" if left else "right", overflow="fold")
    for row in rows:
        counts = row["counts"]
        waits = sum(v for k, v in counts.items() if k not in {"granted", "429"})
        cooldown = f"{row['cooldown_ms'] / 1000:.1f}s" if row["cooldown_ms"] else "-"
        factor = f" (x{row['factor']:.2f})" if row["factor"] < 1 else ""
        table.add_row(
            label(row["bucket"]),
            f"{row['rate']:.2f}{factor}",
            f"{row['tokens']:.1f}/{row['burst']:.0f}",
            f"{row['slots_held']}/{row['concurrency']}",
            str(row["active_flows"]),
            cooldown + (f" ({counts['429']}×429)" if counts.get("429") else ""),
            str(counts.get("granted", 0)),
            f"{waits} ({row['wait_ms_total'] / 1000:.0f}s)",
            reasons(counts),
        )
    return table


def reasons(counts: dict[str, int]) -> str:
    """Why pushes waited, most often first: a turn or place in line is the throttle pacing;
    tokens, flow, slots or cooldown say which limit was the one in the way."""
    waits = sorted(((n, k) for k, n in counts.items() if k not in {"granted", "429"}), reverse=True)
    return ", ".join(f"{k} {n}" for n, k in waits) or "-"


def label(bucket: str) -> str:
    """LLM buckets say which limit they count: a model's requests or its tokens per second."""
    if not bucket.startswith("openai:"):
        return bucket
    if bucket.endswith(":tokens"):
        return f"{bucket.removesuffix(':tokens')} (LLM tokens)"
    return f"{bucket} (LLM requests)"
