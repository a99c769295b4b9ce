"""What a connector raises. Nothing else escapes a connector.

    ConnectorError                 base; never raised directly
    ├── RateLimited(retry_after)   the provider asked us to wait; retry after that many seconds
    ├── Transient                  5xx, timeout, reset: retry with backoff
    ├── Permanent                  the provider refused the write; retrying cannot help
    │   └── InvalidMapping         the mapping asks for something the destination lacks
    └── AuthExpired                the credential is revoked; pause the connection until fixed

Each error keeps the provider's own message, so a person reading the dead-letter queue
sees what the provider said, not our paraphrase of it.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of every error a connector may raise."""

    def __init__(self, message: str, *, provider_code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.provider_code = provider_code

    def __str__(self) -> str:
        return f"{self.provider_code}: {self.message}" if self.provider_code else self.message


class RateLimited(ConnectorError):
    """The provider answered 429 (or its equivalent); wait `retry_after` seconds."""

    def __init__(
        self, message: str, *, retry_after: float, provider_code: str | None = None
    ) -> None:
        super().__init__(message, provider_code=provider_code)
        self.retry_after = max(0.0, float(retry_after))


class Transient(ConnectorError):
    """A failure that may succeed when retried: 5xx, timeouts, connection resets."""


class Permanent(ConnectorError):
    """The provider rejected the operation; the same request will fail again."""


class InvalidMapping(Permanent):
    """The mapping targets a field, object, project or channel that does not fit."""


class AuthExpired(ConnectorError):
    """The credential no longer works (revoked, expired refresh token)."""
