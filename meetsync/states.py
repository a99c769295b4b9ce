"""The states stored rows move through, named once (they compare equal to their strings)."""

from __future__ import annotations

from enum import StrEnum


class MeetingStatus(StrEnum):
    """`received → extracting → extracted → planned`, or `failed` with the reason."""

    RECEIVED = "received"
    EXTRACTING = "extracting"
    EXTRACTED = "extracted"
    PLANNED = "planned"
    FAILED = "failed"


class OpState(StrEnum):
    """The ledger: `planned → sending → done`, or a dead letter (failed, dead, paused)."""

    PLANNED = "planned"
    SENDING = "sending"  # claimed; in doubt once its lease runs out
    DONE = "done"
    FAILED = "failed"  # a permanent error
    DEAD = "dead"  # retries exhausted
    PAUSED = "paused"  # the connection's credential stopped working
    AWAITING_REVIEW = "awaiting_review"  # planned, held for a person's decision (review)
    SKIPPED = "skipped"  # a reviewer skipped it, or its review expired: never written


class Disposition(StrEnum):
    """What re-extractions made of an op's item."""

    MISSING = "missing"  # no longer extracted, record kept
    CLOSED = "closed"  # no longer extracted, record closed by `on_missing: close`
    REOPENED = "reopened"  # closed, then extracted again
    DONE = "done"  # closed because a later meeting said the work was done (org memory)


class ConnectionStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"


class PushState(StrEnum):
    """What one push delivery came to: a ledger state, or why it wrote nothing now."""

    DONE = "done"
    FAILED = "failed"
    DEAD = "dead"
    PAUSED = "paused"
    SUPERSEDED = "superseded"  # its lease ran out and another push took the op over
    QUEUED = "queued"  # not this op's turn in the throttle yet
    THROTTLED = "throttled"  # the provider answered 429
    BUSY = "busy"  # another delivery holds the op
    WAITING = "waiting"  # a recap waiting for the records it links
    AWAITING_REVIEW = "awaiting_review"  # held for a person's decision
    SKIPPED = "skipped"  # a person (or the clock) said no


class Verdict(StrEnum):
    """What became of one review request (`pending` until someone, or the clock, decides)."""

    PENDING = "pending"
    APPROVED = "approved"
    EDITED = "edited"
    SKIPPED = "skipped"
    EXPIRED = "expired"  # recorded as skipped, by the clock
    NOT_NEEDED = "not_needed"  # the record showed no condition held: released as planned
