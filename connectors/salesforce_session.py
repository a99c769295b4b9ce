"""One Salesforce connection: OAuth, the simple-salesforce client, and error mapping.

Every provider failure becomes a connector error in `provider_error`, the one place that
knows Salesforce's statuses and error codes:

    300 several records match            Permanent (DUPLICATE_EXTERNAL_ID)
    400 UNABLE_TO_LOCK_ROW               Transient (row lock contention clears on retry)
    400/404 INVALID_FIELD, INVALID_TYPE, unknown External ID field   InvalidMapping
    400 CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY  Permanent, with the trigger's or flow's message
    400 INACTIVE_OWNER_OR_USER, DUPLICATES_DETECTED, MALFORMED_QUERY, …  Permanent
    400/404 anything else                Permanent
    401 after one refresh, invalid_grant AuthExpired
    403 REQUEST_LIMIT_EXCEEDED, 429      RateLimited (Retry-After, else by which limit)
    403 API_DISABLED_FOR_ORG, …          AuthExpired (the connection, not the op, is broken)
    an untrusted TLS certificate         AuthExpired (say which option trusts it)
    5xx, timeouts, broken responses      Transient
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import jwt
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError

from connectors.base import ConnectionConfig
from connectors.errors import (
    AuthExpired,
    ConnectorError,
    InvalidMapping,
    Permanent,
    RateLimited,
    Transient,
)

T = TypeVar("T")
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MAPPING_CODES = {"INVALID_FIELD", "INVALID_TYPE", "INVALID_FIELD_FOR_INSERT_UPDATE"}
CONNECTION_CODES = {"API_DISABLED_FOR_ORG", "API_CURRENTLY_DISABLED", "INVALID_SESSION_ID"}
TRANSIENT_CODES = {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION"}
# With no Retry-After: the daily total refills over a rolling 24 h, so wait long;
# a concurrency limit clears as soon as other requests finish.
DAILY_LIMIT_WAIT = 3600.0
SHORT_LIMIT_WAIT = 5.0


class _TimeoutSession(requests.Session):
    """A requests session with a default timeout: simple-salesforce sets none."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.default_timeout = timeout

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.default_timeout)
        return super().request(method, url, *args, **kwargs)


class SalesforceSession:
    """Tokens, the client, and the last `Sforce-Limit-Info` of one connection."""

    def __init__(self, config: ConnectionConfig) -> None:
        opts = config.options
        self.config = config
        self.version = str(opts.get("api_version", "62.0"))
        self.login_url = str(opts.get("login_url") or config.base_url or "").rstrip("/")
        if not self.login_url:
            raise InvalidMapping(f"connection {config.name!r} has no login_url or base_url")
        self.http = _TimeoutSession(float(opts.get("timeout", 30.0)))
        self.http.trust_env = False  # loopback and customer orgs alike: no ambient proxies
        self.http.verify = opts.get("ca_file") or True
        self.http.hooks["response"].append(self._observe)
        self.api_usage: tuple[int, int] | None = None
        self.user_id: str | None = None
        self.instance_url = ""
        self._client: Salesforce | None = None
        self._lock = threading.Lock()
        self._seen = threading.local()

    # -- calling --------------------------------------------------------------------
    def call(self, fn: Callable[[Salesforce], T]) -> T:
        """Run `fn` with the client; refresh once on an expired session; map every error."""
        try:
            client = self._client or self._authenticate(None)
            try:
                return fn(client)
            except SalesforceError as exc:
                if exc.status != 401:
                    raise
                # simple-salesforce cannot refresh a token it was handed, so its SFType never
                # recurses here: we refresh once ourselves and a second 401 is final.
                return fn(self._authenticate(client))
        except ConnectorError:
            raise
        except Exception as exc:
            raise provider_error(exc, self._retry_after()) from exc

    def query(self, soql: str) -> list[dict[str, Any]]:
        """Records a SOQL query returns, every batch (nextRecordsUrl followed)."""
        result = self.call(lambda sf: sf.query_all(soql))
        return list(result.get("records", []))

    def rest(self, method: str, path: str, body: Any = None) -> Any:
        """JSON of a call relative to /services/data/vXX.X/ (None for a 204)."""
        return self.call(lambda sf: sf.restful(path, method=method, json=body))

    def record_url(self, obj: str, record_id: str) -> str:
        return f"{self.instance_url}/lightning/r/{obj}/{record_id}/view"

    # -- auth -----------------------------------------------------------------------
    def _authenticate(self, stale: Salesforce | None) -> Salesforce:
        with self._lock:
            if self._client is not None and self._client is not stale:
                return self._client  # another thread refreshed while we waited
            grant = self._grant()
            with self.http.post(f"{self.login_url}/services/oauth2/token", data=grant) as response:
                status = response.status_code
                try:
                    token = response.json()
                except ValueError:
                    token = {}
            # A response kept alive by a caller's traceback keeps its socket open.
            del response
            if status >= 500:
                raise Transient(f"token endpoint answered {status}")
            if status != 200 or "access_token" not in token:
                raise AuthExpired(
                    token.get("error_description") or f"HTTP {status}",
                    provider_code=token.get("error") or "invalid_grant",
                )
            self.instance_url = token.get("instance_url") or self.login_url
            self.user_id = str(token.get("id", "")).rsplit("/", 1)[-1] or None
            self._client = Salesforce(
                instance_url=self.instance_url,
                session_id=token["access_token"],
                version=self.version,
                session=self.http,
            )
            return self._client

    def _grant(self) -> dict[str, str]:
        creds = self.config.credentials
        if creds.get("private_key"):
            claims = {
                "iss": creds["client_id"],
                "sub": creds["username"],
                "aud": self.config.options.get("jwt_audience", self.login_url),
                "exp": int(time.time()) + 180,
            }
            assertion = jwt.encode(claims, creds["private_key"], algorithm="RS256")
            return {"grant_type": JWT_GRANT, "assertion": assertion}
        return {
            "grant_type": "refresh_token",
            "client_id": str(creds.get("client_id", "")),
            "client_secret": str(creds.get("client_secret", "")),
            "refresh_token": str(creds.get("refresh_token", "")),
        }

    # -- observing responses --------------------------------------------------------
    def _observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        info = response.headers.get("Sforce-Limit-Info", "")
        if info.startswith("api-usage="):
            used, _, limit = info.split("=", 1)[1].split(";", 1)[0].partition("/")
            if used.isdigit() and limit.isdigit():
                self.api_usage = (int(used), int(limit))
        self._seen.retry_after = response.headers.get("Retry-After")

    def _retry_after(self) -> float | None:
        value = getattr(self._seen, "retry_after", None)
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None


def provider_error(exc: BaseException, retry_after: float | None = None) -> ConnectorError:
    """The connector error for anything simple-salesforce or requests raised."""
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, SalesforceError):
        return _from_status(exc.status, exc.content, retry_after)
    if isinstance(exc, requests.exceptions.SSLError):
        # every call of the connection fails alike: a setting to fix, not a retry to spend
        return AuthExpired(
            "the server's TLS certificate is not trusted; a self-signed one (the sandbox's) "
            "needs the connection option ca_file=<its certificate>, listed in "
            "MEETSYNC_ENDPOINTS__CA_FILES"
        )
    if isinstance(exc, requests.RequestException | ValueError):
        # Timeouts, resets, and responses cut off mid-body (the write may have happened).
        return Transient(f"{type(exc).__name__}: {exc}")
    return Transient(f"unexpected {type(exc).__name__}: {exc}")


def _first_error(content: Any) -> tuple[str, str]:
    """Salesforce's error code and message; never the body of an answer that is not one."""
    first = content[0] if isinstance(content, list) and content else content
    if isinstance(first, dict):
        code = str(first.get("errorCode") or first.get("error") or "")
        message = first.get("message") or first.get("error_description")
        return code[:100], str(message)[:500] if message else "an error without a message"
    return "", "an answer that is not a Salesforce error (not shown)"


def _from_status(status: int, content: Any, retry_after: float | None) -> ConnectorError:
    code, message = _first_error(content)
    if status == 300:
        return Permanent(f"several records match: {content}", provider_code="DUPLICATE_EXTERNAL_ID")
    if status == 429 or code == "REQUEST_LIMIT_EXCEEDED":
        wait = DAILY_LIMIT_WAIT if "TotalRequests" in message else SHORT_LIMIT_WAIT
        return RateLimited(
            message,
            retry_after=retry_after if retry_after is not None else wait,
            provider_code=code or "REQUEST_LIMIT_EXCEEDED",
        )
    if status == 401 or code in CONNECTION_CODES:
        return AuthExpired(message, provider_code=code or "INVALID_SESSION_ID")
    if status >= 500 or code in TRANSIENT_CODES:
        return Transient(message, provider_code=code or f"HTTP_{status}")
    if code in MAPPING_CODES or "external ID field does not exist" in message:
        return InvalidMapping(message, provider_code=code or "INVALID_FIELD")
    return Permanent(message, provider_code=code or f"HTTP_{status}")
