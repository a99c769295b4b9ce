"""Which arm a meeting gets: a hash of (experiment, unit), cut by the arms' shares.

Pure and stateless: a redelivered or backfilled meeting hashes to the same arm, so its
extraction cache key stays valid. The unit is the meeting, its org, or its organiser when
the experiment is sticky per org or per user. An arm stopped by a guardrail gives its
traffic to control; the other arms keep their meetings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from typing import Any

from extraction.experiments.spec import Arm, ExperimentSpec

SCALE = float(1 << 64)


def unit_of(spec: ExperimentSpec, external_id: str, org_id: str, payload: dict[str, Any]) -> str:
    """What is assigned as one: the meeting (the notes pipeline's id in its org, the same in
    every database and on every redelivery), the org, or the organiser (first attendee)."""
    if spec.sticky == "org":
        return f"org:{org_id}"
    if spec.sticky == "user":
        attendees = payload.get("attendees") or []
        first = attendees[0] if attendees else {}
        person = first.get("email") or first.get("name")
        if person:
            return f"user:{org_id}:{str(person).lower()}"
    return f"meeting:{org_id}:{external_id}"


def bucket(experiment: str, unit: str) -> float:
    """A uniform number in [0, 1) fixed by (experiment, unit)."""
    digest = hashlib.sha256(f"{experiment}\x1f{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / SCALE


def assign(spec: ExperimentSpec, unit: str, stopped: Collection[str] = ()) -> Arm:
    """The live arm for `unit`; a stopped arm's traffic goes to control."""
    point, edge = bucket(spec.name, unit), 0.0
    live = spec.live
    chosen = live[-1]
    for arm in live:
        edge += arm.share
        if point < edge:
            chosen = arm
            break
    return spec.arm(spec.control) if chosen.name in stopped else chosen


def in_scope(spec: ExperimentSpec, org_id: str) -> bool:
    return spec.orgs is None or org_id in spec.orgs
