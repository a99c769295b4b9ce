"""What the sandbox should hold after a chaos run, and how far what it holds is from that.

The expected set is computed apart from the run: each meeting extracted again against a
fault-free OpenAI emulator (the deterministic rules model) and planned through the org's
mapping, dry. Objects are matched by their idempotency markers: Asana `external.gid` (or the
notes marker of a personal access token),
Slack message metadata `op_key` (one per part), Salesforce `Meetsync_Key__c`. An update
of an existing record (an Opportunity's next step) leaves no marker; it is checked in the
ledger: done, with the planned payload applied.

An op the provider refuses by its data, whatever the faults (an Opportunity update when
the account has no open Opportunity: NO_MATCH), is *refused*: a dead letter by design,
counted apart and not as missing. Faults are 5xx, lost responses and timeouts, so they
can never produce such a refusal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from connectors.asana_tasks import MARKER
from connectors.base import Op
from extraction.extract import extract_insights
from mappings.engine import plan_ops
from mappings.spec import Mapping
from meetsync.db.models import OpRecord
from meetsync.db.session import session_scope
from meetsync.models import MeetingOutput
from meetsync.settings import Settings
from sandbox.server import Sandbox

SALESFORCE_KEY = "Meetsync_Key__c"
REFUSALS = ("NO_MATCH",)  # provider answers about the data, never caused by a fault


@dataclass(frozen=True)
class Comparison:
    expected_ops: int
    duplicates: int
    missing: int
    extra: int
    refused: int = 0
    missing_keys: tuple[str, ...] = ()
    duplicate_keys: tuple[str, ...] = ()


def expected_ops(
    meetings: Sequence[MeetingOutput],
    mapping: Mapping,
    settings: Settings,
    profile: dict[str, Any],
    threads: int = 4,
) -> list[Op]:
    """Every op the pipeline should write, from a fault-free extraction of each meeting."""
    with Sandbox(only=["openai"], options={"openai": {"rpm": 10**9, "tpm": 10**12}}) as clean:
        llm = settings.llm.model_copy(update={"base_url": clean.urls["openai"]})

        def plan_one(meeting: MeetingOutput) -> list[Op]:
            insights = extract_insights(meeting, settings=llm, org_profile=profile).insights
            return plan_ops(meeting, insights, mapping, meeting_url="http://chaos.invalid/")

        with ThreadPoolExecutor(threads) as pool:
            return [op for ops in pool.map(plan_one, meetings) for op in ops]


def _asana_key(task: dict[str, Any]) -> str | None:
    """The op key: the external gid (OAuth) or the notes marker (personal access token)."""
    external = (task.get("external") or {}).get("gid")
    if external:
        return str(external)
    for line in reversed((task.get("notes") or "").splitlines()):
        if line.startswith(f"{MARKER} "):
            return line.split()[1]
    return None


def held_markers(states: dict[str, dict[str, Any]]) -> dict[str, Counter[str]]:
    """Per connector, how many objects carry each op key (Slack: key#part)."""
    asana: Counter[str] = Counter(
        key for key in (_asana_key(t) for t in states["asana"]["tasks"]) if key
    )
    slack: Counter[str] = Counter()
    for message in states["slack"]["messages"]:
        payload = ((message.get("metadata") or {}).get("event_payload")) or {}
        if payload.get("op_key"):
            slack[f"{payload['op_key']}#{payload.get('part', 1)}"] += 1
    salesforce = Counter(
        record[SALESFORCE_KEY]
        for records in states["salesforce"]["records"].values()
        for record in records
        if record.get(SALESFORCE_KEY)
    )
    return {"asana": asana, "slack": slack, "salesforce": salesforce}


def compare(ops: Sequence[Op], states: dict[str, dict[str, Any]], database_url: str) -> Comparison:
    """Duplicates, missing and extra objects against the expected ops."""
    held = held_markers(states)
    with session_scope(database_url) as session:
        ledger = {row.key: row for row in session.scalars(select(OpRecord))}
        done_updates = {
            key
            for key, row in ledger.items()
            if row.state == "done" and row.applied_hash == row.payload_hash and row.external_id
        }
        refused = {
            key
            for key, row in ledger.items()
            if row.state == "failed" and (row.last_error or "").startswith(REFUSALS)
        }
    duplicates, missing, extra = 0, [], 0
    duplicate_keys: list[str] = []
    expected = {op.key: op for op in ops}
    slack_parts: dict[str, dict[str, int]] = {}
    for marker, count in held["slack"].items():
        slack_parts.setdefault(marker.split("#")[0], {})[marker] = count
    for op in ops:
        if op.key in refused:
            continue
        if op.connector == "salesforce" and op.action == "update":
            if op.key not in done_updates:
                missing.append(op.key)
            continue
        if op.connector == "slack":
            parts = slack_parts.get(op.key, {})
            if f"{op.key}#1" not in parts:
                missing.append(op.key)
            surplus = sum(n - 1 for n in parts.values())
        else:
            count = held[op.connector][op.key]
            if count == 0:
                missing.append(op.key)
            surplus = max(count - 1, 0)
        if surplus:
            duplicates += surplus
            duplicate_keys.append(op.key)
    for markers in held.values():
        for marker, count in markers.items():
            if marker.split("#")[0] not in expected:
                extra += count
    return Comparison(
        expected_ops=len(ops) - len(refused & set(expected)),
        refused=len(refused & set(expected)),
        duplicates=duplicates,
        missing=len(missing),
        extra=extra,
        missing_keys=tuple(missing[:20]),
        duplicate_keys=tuple(duplicate_keys[:20]),
    )
