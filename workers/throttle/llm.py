"""The LLM's own limits in front of extraction: a requests and a tokens bucket per model.

A meeting is admitted at its first call, for the whole extraction: one request and the
estimated tokens (prompt counted with tiktoken, plus the answer's max_tokens, which OpenAI
counts against TPM up front) for every task, so an extraction never stops half-way and
redoes its first call. Calls beyond that reservation (chunks of a long transcript, a repair,
a split) ask for themselves. A wait leaves as `LLMWait` with the exact delay and the
tickets of its turns; the actor re-enqueues with them: no thread sleeps, no retry spent.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache

from extraction.extract import TASKS
from extraction.llm import PlannedCall
from extraction.prompting import load_prompt
from meetsync.db.models import Meeting
from meetsync.settings import Settings
from meetsync.tokens import count_tokens
from workers.runtime import Runtime
from workers.throttle.buckets import Ask, Throttle
from workers.throttle.feedback import on_llm_headers
from workers.throttle.limits import asks_for_llm, make_throttle

log = logging.getLogger(__name__)

# our cl100k count of the messages vs the provider's own estimate of the same request
ESTIMATE_MARGIN = 1.05
# OpenAI's chat format: a few tokens around each message and for the reply's priming
PER_MESSAGE, PRIMING = 4, 3


class LLMWait(Exception):
    """Not yet: come back in `wait_ms`, keeping the turns in `tickets`."""

    def __init__(self, wait_ms: int, tickets: dict[str, int]) -> None:
        super().__init__(f"llm throttled for {wait_ms} ms")
        self.wait_ms = wait_ms
        self.tickets = tickets


def prompt_tokens(messages: list[dict[str, object]]) -> int:
    """Tokens of the messages as the chat format counts them (tiktoken, via chunking)."""
    return sum(count_tokens(str(m.get("content") or "")) + PER_MESSAGE for m in messages) + PRIMING


@lru_cache(maxsize=32)
def template_tokens(task: str, version: str) -> int:
    """The fixed part of a task's prompt: what differs between two tasks on one meeting."""
    system, user = load_prompt(task, version)
    return count_tokens(system.template) + count_tokens(user.template)


@dataclass
class LLMGate:
    """One per worker process: admits each extraction's calls through the shared throttle."""

    runtime: Runtime
    throttle: Throttle

    @classmethod
    def for_runtime(cls, runtime: Runtime) -> LLMGate:
        return cls(runtime, make_throttle(runtime.settings))

    def admission(self, meeting_id: str, tickets: Mapping[str, int]) -> Admission:
        """The gate of one extraction attempt; its org's flow, live or backfill."""
        with self.runtime.session() as session:
            meeting = session.get(Meeting, meeting_id)
            org = meeting.org_id if meeting is not None else "default"
            backfill = meeting is not None and meeting.source == "backfill"
        return Admission(self.runtime.settings, self.throttle, org, backfill, dict(tickets))


@dataclass
class Admission:
    """A `CallGate` for one extraction attempt; `close()` gives back what it did not spend."""

    settings: Settings
    throttle: Throttle
    org: str
    backfill: bool
    tickets: dict[str, int]
    prepaid: dict[str, float] = field(default_factory=dict)
    asks: dict[str, Ask] = field(default_factory=dict)
    leases: list[tuple[Ask, str]] = field(default_factory=list)
    calls: int = 0

    def _buckets(self, model: str) -> tuple[Ask, Ask]:
        requests, tokens = asks_for_llm(self.settings, model, self.org, backfill=self.backfill)
        self.asks[requests.bucket], self.asks[tokens.bucket] = requests, tokens
        return requests, tokens

    def _cost(self, call: PlannedCall, task: str, model: str) -> tuple[Ask, Ask, float]:
        """Both buckets of `task`'s call, and its tokens, estimated from `call`'s prompt."""
        versions = self.settings.llm.prompt_versions
        prompt = prompt_tokens(call.messages)
        if task != call.task:
            # another task over the same meeting: same meeting block, its own instructions
            prompt += template_tokens(task, versions[task]) - template_tokens(
                call.task, versions[call.task]
            )
        output = call.max_output_tokens * self.settings.throttle.llm_output_share
        requests, tokens = self._buckets(model)
        return requests, tokens, math.ceil((prompt + output) * ESTIMATE_MARGIN)

    def before(self, call: PlannedCall) -> None:
        """Spend from the reservation; the first call reserves the whole extraction."""
        this: dict[str, float] = {}
        requests, tokens, cost = self._cost(call, call.task, call.model)
        this[requests.bucket], this[tokens.bucket] = 1.0, cost
        wanted = dict(this)
        if self.calls == 0:
            models = self.settings.llm.models
            for task in (t for t in TASKS if t != call.task and t in models):
                r, t, c = self._cost(call, task, models[task])
                wanted[r.bucket] = wanted.get(r.bucket, 0.0) + 1.0
                wanted[t.bucket] = wanted.get(t.bucket, 0.0) + c
        short = {b: n - self.prepaid.get(b, 0.0) for b, n in wanted.items()}
        self._acquire({b: n for b, n in short.items() if n > 0})
        for bucket, amount in this.items():
            self.prepaid[bucket] = max(0.0, self.prepaid.get(bucket, 0.0) - amount)
        self.calls += 1

    def _acquire(self, needs: dict[str, float]) -> None:
        """All of `needs` now, or none of it and the longest wait."""
        granted: list[tuple[Ask, str, float]] = []
        wait_ms = 0
        for bucket, amount in sorted(needs.items()):
            ask = self.asks[bucket]
            # a call larger than a full bucket waits for a full bucket, not forever
            cost = min(amount, float(ask.limits.burst))
            decision = self.throttle.acquire(replace(ask, cost=cost), self.tickets.get(bucket, 0))
            self.tickets[bucket] = decision.ticket
            if decision.granted:
                granted.append((ask, decision.lease, amount))
            else:
                wait_ms = max(wait_ms, decision.wait_ms, 1)
        if wait_ms:
            for ask, lease, amount in granted:
                self.throttle.refund(ask, lease, min(amount, float(ask.limits.burst)))
            raise LLMWait(wait_ms, {b: t for b, t in self.tickets.items() if t})
        for ask, lease, amount in granted:
            self.leases.append((ask, lease))
            self.prepaid[ask.bucket] = self.prepaid.get(ask.bucket, 0.0) + amount
        self.tickets.clear()

    def after(self, call: PlannedCall, status: int, headers: Mapping[str, str]) -> None:
        """What the provider said about its budget: a 429 cools down, headers correct us."""
        requests, tokens = self._buckets(call.model)
        on_llm_headers(
            self.throttle,
            requests.bucket,
            tokens.bucket,
            headers,
            status=status,
            in_hand={b: self.prepaid.get(b, 0.0) for b in (requests.bucket, tokens.bucket)},
            limits={requests.bucket: requests.limits, tokens.bucket: tokens.limits},
        )

    def close(self) -> None:
        """Release the slots; what was reserved and never sent goes back to the buckets."""
        for ask, lease in self.leases:
            left = self.prepaid.pop(ask.bucket, 0.0)
            if left > 0:
                self.throttle.refund(ask, lease, left)
            else:
                self.throttle.release(ask, lease)
        self.leases.clear()
