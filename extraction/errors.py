"""What extraction raises, named for what the worker should do.

ExtractionError
├── LLMRateLimited(retry_after)   come back after `retry_after` seconds; not a failure
├── LLMTransient                  retry with backoff (timeouts, 5xx, lost connections)
├── LLMInvalidOutput              the model's answer stayed unusable after one repair
├── LLMRefused                    the model declined; retrying the same input won't help
└── LLMRequestRejected            our request is wrong (400/401/403/404): fix config
    └── LLMQuotaExhausted         429 insufficient_quota: the account is out of credit; no
                                  retry helps until someone pays, so the meeting fails saying so
"""

from __future__ import annotations


class ExtractionError(Exception):
    """Base of every extraction failure."""


class LLMRateLimited(ExtractionError):
    """The provider asked us to wait."""

    def __init__(self, retry_after: float, message: str = "") -> None:
        super().__init__(message or f"rate limited; retry after {retry_after:.1f}s")
        self.retry_after = retry_after


class LLMTransient(ExtractionError):
    """A failure that a later retry may not see."""


class LLMInvalidOutput(ExtractionError):
    """The answer did not validate against the schema, even after a repair attempt."""


class LLMRefused(ExtractionError):
    """The model refused the request."""


class LLMRequestRejected(ExtractionError):
    """The provider rejected the request itself: bad key, unknown model, bad parameters."""


class LLMQuotaExhausted(LLMRequestRejected):
    """The provider account has no quota left (a 429 that waiting does not cure)."""
