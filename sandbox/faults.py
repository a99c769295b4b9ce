"""Seeded fault rules: which requests fail, how, and when, reproducibly.

A rule matches requests by method and path (a prefix, or a glob when it holds `*`, `?` or
`[`) and fires with probability `rate`, at most `times` times. Kinds:

    latency        delay the request (adds up with other latency rules), then serve it
    error          answer `status` (one int, or a list drawn from) in the provider's error shape,
                   with the provider's error `code` and `message` when given (e.g.
                   Salesforce's UNABLE_TO_LOCK_ROW, OpenAI's insufficient_quota)
    throttle       start a burst of `burst` consecutive 429s with `retry_after`
    reset          close the connection with a TCP reset, nothing answered, nothing applied
    timeout        read the request, answer nothing for `hold` seconds, then drop it
    lost_response  apply the request, then drop the connection before the answer

Latency is `{"fixed": s}`, `{"uniform": [lo, hi]}` or `{"lognormal": {"median": s,
"sigma": x}}`, capped by `max` seconds. Each provider owns one `FaultPlan` and one
`random.Random(seed)`: the same seed and the same request sequence give the same faults.
"""

from __future__ import annotations

import fnmatch
import math
import random
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("latency", "error", "throttle", "reset", "timeout", "lost_response")
MAX_HOLD = 300.0  # a timeout fault never pins a connection longer than this
MAX_LATENCY = 60.0


@dataclass
class FaultRule:
    """One fault: what it matches, how often it fires, and its parameters."""

    kind: str
    method: str | None = None
    path: str = ""
    rate: float = 1.0
    times: int | None = None
    status: int | list[int] = 503
    retry_after: float | None = None
    burst: int = 1
    hold: float = 30.0
    latency: dict[str, Any] = field(default_factory=dict)
    code: str | None = None
    message: str | None = None
    # Runtime state, reported but never configured.
    fired: int = 0
    burst_left: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; use one of {', '.join(KINDS)}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1, not {self.rate}")
        if self.times is not None and self.times < 1:
            raise ValueError(f"times must be at least 1, not {self.times}")
        if self.burst < 1:
            raise ValueError(f"burst must be at least 1, not {self.burst}")
        if not 0 < self.hold <= MAX_HOLD:
            raise ValueError(f"hold must be in (0, {MAX_HOLD}] seconds, not {self.hold}")
        statuses = self.status if isinstance(self.status, list) else [self.status]
        if not statuses or any(not 400 <= int(s) <= 599 for s in statuses):
            raise ValueError(f"status must be 4xx or 5xx, not {self.status}")
        if self.kind == "latency":
            _check_latency(self.latency)
        self.method = self.method.upper() if self.method else None
        self._glob = any(c in self.path for c in "*?[")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        """A rule from its JSON form; unknown keys are an error that names them."""
        known = {f for f in cls.__dataclass_fields__ if f not in ("fired", "burst_left")}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault rule keys: {', '.join(sorted(unknown))}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        if self._glob:
            return fnmatch.fnmatchcase(path, self.path)
        return path.startswith(self.path)

    @property
    def spent(self) -> bool:
        return self.times is not None and self.fired >= self.times and not self.burst_left


@dataclass(frozen=True)
class Decision:
    """What to do with one request: wait `delay` seconds, then `kind` (None: serve it)."""

    delay: float = 0.0
    kind: str | None = None
    status: int = 0
    retry_after: float | None = None
    hold: float = 0.0
    code: str | None = None
    message: str | None = None


def _check_latency(spec: dict[str, Any]) -> None:
    shapes = {"fixed", "uniform", "lognormal"} & set(spec)
    if len(shapes) != 1 or set(spec) - {"fixed", "uniform", "lognormal", "max"}:
        raise ValueError(
            "latency is one of {'fixed': s}, {'uniform': [lo, hi]}, "
            f"{{'lognormal': {{'median': s, 'sigma': x}}}} (plus 'max'), not {spec}"
        )
    if "uniform" in spec:
        lo, hi = spec["uniform"]
        if not 0 <= lo <= hi:
            raise ValueError(f"uniform latency needs 0 <= lo <= hi, not {spec['uniform']}")
    if "lognormal" in spec and float(spec["lognormal"]["median"]) <= 0:
        raise ValueError("lognormal latency needs a positive median")


def _draw_latency(spec: dict[str, Any], rng: random.Random) -> float:
    if "fixed" in spec:
        delay = float(spec["fixed"])
    elif "uniform" in spec:
        lo, hi = spec["uniform"]
        delay = rng.uniform(float(lo), float(hi))
    else:
        shape = spec["lognormal"]
        delay = rng.lognormvariate(math.log(float(shape["median"])), float(shape["sigma"]))
    return max(0.0, min(delay, float(spec.get("max", MAX_LATENCY))))


class FaultPlan:
    """A provider's fault rules and its seeded random source; safe across threads."""

    def __init__(self, seed: int | None = None) -> None:
        self.lock = threading.Lock()
        self.seed = seed
        self.rng = random.Random(seed)
        self.rules: list[FaultRule] = []
        self.injected: Counter[str] = Counter()
        self._baseline: tuple[int | None, list[dict[str, Any]]] = (seed, [])

    def configure(
        self,
        rules: Sequence[FaultRule | dict[str, Any]],
        seed: int | None = None,
        *,
        replace: bool = True,
        baseline: bool = False,
    ) -> None:
        """Install rules (replacing or appending); a given seed restarts the random source.

        With `baseline`, `restore()` comes back to exactly these rules and this seed.
        """
        parsed = [r if isinstance(r, FaultRule) else FaultRule.from_dict(dict(r)) for r in rules]
        with self.lock:
            if replace:
                self.rules = parsed
            else:
                self.rules.extend(parsed)
            if seed is not None or replace:
                self.seed = seed if seed is not None else self.seed
                self.rng = random.Random(self.seed)
            if baseline:
                self._baseline = (self.seed, [_config(r) for r in self.rules])

    def clear(self) -> None:
        with self.lock:
            self.rules = []

    def restore(self) -> None:
        """Back to the baseline rules and seed, with the random source rewound."""
        seed, rules = self._baseline
        self.configure(rules, seed)
        with self.lock:
            self.injected.clear()

    def describe(self) -> dict[str, Any]:
        with self.lock:
            return {
                "seed": self.seed,
                "rules": [r.to_dict() for r in self.rules],
                "injected": dict(self.injected),
            }

    def decide(self, method: str, path: str) -> Decision | None:
        """Roll the dice for one request; None when no rule touches it."""
        with self.lock:
            delay = 0.0
            outcome: FaultRule | None = None
            for rule in self.rules:
                if rule.spent or not rule.matches(method, path):
                    continue
                if rule.kind == "latency":
                    if self._fires(rule):
                        delay += _draw_latency(rule.latency, self.rng)
                        self.injected["latency"] += 1
                    continue
                if outcome is not None:
                    continue
                if rule.burst_left:
                    rule.burst_left -= 1
                    outcome = rule
                elif self._fires(rule):
                    if rule.kind == "throttle":
                        rule.burst_left = rule.burst - 1
                    outcome = rule
            self.rules = [r for r in self.rules if not r.spent]
            if outcome is None:
                return Decision(delay=delay) if delay else None
            kind = "error" if outcome.kind == "throttle" else outcome.kind
            status = 429 if outcome.kind == "throttle" else self._status(outcome)
            self.injected[outcome.kind] += 1
            return Decision(
                delay,
                kind,
                status,
                outcome.retry_after,
                outcome.hold,
                outcome.code,
                outcome.message,
            )

    def _fires(self, rule: FaultRule) -> bool:
        # Always draw, even at rate 1, so a rule's rate never shifts the others' dice.
        hit = self.rng.random() < rule.rate
        if hit:
            rule.fired += 1
        return hit

    def _status(self, rule: FaultRule) -> int:
        if isinstance(rule.status, list):
            return int(self.rng.choice(rule.status))
        return int(rule.status)


def _config(rule: FaultRule) -> dict[str, Any]:
    data = rule.to_dict()
    del data["fired"], data["burst_left"]
    return data
