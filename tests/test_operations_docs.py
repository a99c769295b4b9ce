"""The operator's kit holds together: every alert has its runbook section, and every series
an alert or a dashboard panel queries is one meetsync (or dramatiq) really exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import Counter, Gauge, Histogram

from meetsync import metrics

ROOT = Path(__file__).resolve().parents[1]
ALERTS = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yaml").read_text())
DASHBOARD = json.loads((ROOT / "deploy" / "grafana" / "meetsync.json").read_text())
RUNBOOK = (ROOT / "docs" / "operations.md").read_text()
SERIES = re.compile(r"\b((?:meetsync|dramatiq)_[a-z_]+)\b")
# dramatiq's Prometheus middleware (dramatiq/middleware/prometheus.py)
DRAMATIQ = {
    "dramatiq_messages_total", "dramatiq_message_errors_total", "dramatiq_message_retries_total",
    "dramatiq_message_rejects_total", "dramatiq_messages_inprogress",
    "dramatiq_delayed_messages_inprogress", "dramatiq_message_duration_milliseconds_bucket",
    "dramatiq_message_duration_milliseconds_count", "dramatiq_message_duration_milliseconds_sum",
}  # fmt: skip
STORE = {"meetsync_ops", "meetsync_meetings", "meetsync_connections", "meetsync_backfill_meetings"}


def exported() -> set[str]:
    names = set(DRAMATIQ) | STORE
    for value in vars(metrics).values():
        if isinstance(value, Histogram):
            names |= {f"{value._name}_{s}" for s in ("bucket", "count", "sum")}
        elif isinstance(value, Counter):
            names.add(f"{value._name}_total")
        elif isinstance(value, Gauge):
            names.add(value._name)
    return names


def slugs(markdown: str) -> set[str]:
    """GitHub's anchors of a document's headings."""
    headings = re.findall(r"^#+ (.+)$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}


def rules() -> list[dict[str, object]]:
    return [rule for group in ALERTS["groups"] for rule in group["rules"]]


def test_every_alert_points_to_its_runbook_section() -> None:
    anchors = slugs(RUNBOOK)
    for rule in rules():
        runbook = str(rule["annotations"]["runbook"])  # type: ignore[index]
        path, _, anchor = runbook.partition("#")
        assert path == "docs/operations.md" and anchor in anchors, rule["alert"]


def test_alerts_and_panels_query_only_exported_series() -> None:
    known = exported()
    queries = [str(rule["expr"]) for rule in rules()]
    queries += [t["expr"] for panel in DASHBOARD["panels"] for t in panel["targets"]]
    unknown = {name for q in queries for name in SERIES.findall(q)} - known
    assert unknown == set()


def test_the_dashboard_covers_what_the_issue_asks_to_see() -> None:
    queried = " ".join(t["expr"] for p in DASHBOARD["panels"] for t in p["targets"])
    for series in (
        "meetsync_webhooks_total", "meetsync_ops", "meetsync_push_seconds_bucket",
        "meetsync_provider_errors_total", "meetsync_throttle_wait_seconds_bucket",
        "meetsync_throttle_utilisation", "meetsync_llm_cost_usd_total",
        "meetsync_extraction_cache_total", "meetsync_dead_letters_total",
        "meetsync_backfill_meetings", "meetsync_queue_depth", "dramatiq_messages_total",
    ):  # fmt: skip
        assert series in queried, series
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))


def test_the_runbook_has_each_procedure_and_the_sizing_placeholder() -> None:
    anchors = slugs(RUNBOOK)
    for procedure in (
        "drain-a-queue", "replay-dead-letters", "rotate-keys",
        "pause-and-resume-a-connection", "restore-after-a-broker-loss", "sizing-guide",
    ):  # fmt: skip
        assert procedure in anchors
