"""Admin-configured validation rules, the org-specific checks that reject otherwise valid writes.

A rule is data, so tests and the chaos harness can arm one over HTTP:

    {"object": "Opportunity", "name": "NextStepWhenNegotiating", "field": "NextStep",
     "message": "Next Step is required in Negotiation",
     "when": [{"field": "StageName", "op": "eq", "value": "Negotiation/Review"},
              {"field": "NextStep", "op": "blank"}]}

The rule fires (the write fails with FIELD_CUSTOM_VALIDATION_EXCEPTION) when every
condition holds on the record as it would be saved, as a real error-condition formula does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sandbox.salesforce.faults import SalesforceFault


def _blank(v: Any) -> bool:
    return v is None or v == ""


OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda v, x: v == x,
    "ne": lambda v, x: v != x,
    "in": lambda v, x: v in x,
    "not_in": lambda v, x: v not in x,
    "blank": lambda v, _: _blank(v),
    "not_blank": lambda v, _: not _blank(v),
    "longer_than": lambda v, x: isinstance(v, str) and len(v) > int(x),
    "matches": lambda v, x: isinstance(v, str) and re.search(x, v) is not None,
    "gt": lambda v, x: v is not None and v > x,
    "lt": lambda v, x: v is not None and v < x,
}


def check_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """The rule itself, or ValueError naming what is wrong with it."""
    for key in ("object", "message", "when"):
        if key not in rule:
            raise ValueError(f"validation rule needs {key!r}")
    for cond in rule["when"]:
        if cond.get("op") not in OPS or "field" not in cond:
            raise ValueError(f"bad condition {cond!r}; ops: {', '.join(OPS)}")
    return rule


def enforce(rules: list[dict[str, Any]], obj: str, record: dict[str, Any]) -> None:
    """Raise the first rule of `obj` that the record would violate."""
    for rule in rules:
        if rule["object"] != obj:
            continue
        if all(OPS[c["op"]](record.get(c["field"]), c.get("value")) for c in rule["when"]):
            field = rule.get("field")
            raise SalesforceFault(
                400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", rule["message"], [field] if field else []
            )
