"""Write policies: which of an op's fields may overwrite what the destination holds now.

    always          write (the default; never listed in op.target["write_policy"])
    if_empty        write only while the destination's field is empty
    unless_edited   write unless the field changed since meetsync last wrote it

What meetsync last wrote is kept in the receipt as a fingerprint per field
(`extra["written"] = {"record": id, "fields": {name: fingerprint}}`), so the ledger carries
it from one apply to the next without a copy of the record's contents. A field meetsync
has no fingerprint of (never written by this op, or written to another record) counts as
not edited: there is no earlier write of ours for a person to have changed.

Connectors call `decide` with the values they read just before writing; previews call it
with the values they show, so both report the same skipped fields.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

IF_EMPTY = "if_empty"
UNLESS_EDITED = "unless_edited"
HELD = "if_empty: the field already holds a value"
EDITED = "unless_edited: changed since meetsync last wrote it"


def policies_of(target: dict[str, Any], names: list[str] | None = None) -> dict[str, str]:
    """The op's non-default policies, keyed by the spelling `names` uses (case-insensitive)."""
    declared = {str(k): str(v) for k, v in (target.get("write_policy") or {}).items()}
    if names is None:
        return {k: v for k, v in declared.items() if v != "always"}
    by_lower = {k.lower(): v for k, v in declared.items()}
    return {n: by_lower[n.lower()] for n in names if by_lower.get(n.lower(), "always") != "always"}


def is_blank(value: Any) -> bool:
    """Empty as a person sees it: nothing, blank text, an empty list or object."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | dict):
        return not value
    return False


def _canonical(value: Any) -> Any:
    # The same value read back may be spelt differently (50000 vs 50000.0, "Z" vs "+0000",
    # "a;b" order): compare meanings, not spellings.
    if is_blank(value):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if "T" in text and text[:4].isdigit():
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return text
            if moment.tzinfo is not None:
                moment = moment.astimezone(UTC)
            return moment.replace(microsecond=0).isoformat()
        return text
    if isinstance(value, list):
        return sorted((_canonical(v) for v in value), key=repr)
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items())}
    return str(value)


def fingerprint(value: Any) -> str:
    """A short hash of a value's meaning, so receipts remember writes without their content."""
    blob = json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def same(current: Any, new: Any) -> bool:
    """True when two values mean the same (numbers, timestamps and blanks compared loosely)."""
    return _canonical(current) == _canonical(new)


def written_fields(prior_extra: dict[str, Any] | None, record: str) -> dict[str, str]:
    """Fingerprints of what meetsync last wrote to `record`, from a prior receipt's extra."""
    written = (prior_extra or {}).get("written") or {}
    if str(written.get("record")) != str(record):
        return {}
    return dict(written.get("fields") or {})


@dataclass
class Decision:
    """The fields to write now, and those left alone with the reason why."""

    write: dict[str, Any]
    skipped: dict[str, str] = field(default_factory=dict)


def decide(
    fields: dict[str, Any],
    policies: dict[str, str],
    current: dict[str, Any] | None,
    written: dict[str, str],
) -> Decision:
    """Apply each field's policy; `current` None means the record does not exist yet."""
    decision = Decision(write={})
    for name, value in fields.items():
        policy = policies.get(name, "always")
        now = None if current is None else current.get(name)
        if policy == IF_EMPTY and not is_blank(now):
            decision.skipped[name] = HELD
        elif policy == UNLESS_EDITED and _edited(name, now, value, written):
            decision.skipped[name] = EDITED
        else:
            decision.write[name] = value
    return decision


def _edited(name: str, now: Any, new: Any, written: dict[str, str]) -> bool:
    last = written.get(name)
    if last is None or is_blank(now) or same(now, new):
        return False  # nothing of ours to protect, nothing there, or nothing would change
    return fingerprint(now) != last


def remember(
    record: str, prior_extra: dict[str, Any] | None, now_written: dict[str, Any]
) -> dict[str, Any]:
    """The `written` entry of a new receipt: earlier fingerprints, updated by this write."""
    fields = written_fields(prior_extra, record)
    fields.update({name: fingerprint(value) for name, value in now_written.items()})
    return {"record": record, "fields": fields}
