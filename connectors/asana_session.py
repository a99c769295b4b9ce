"""One Asana connection: the asana SDK's API handles on one token, and `_call`.

The token is a personal access token (`credentials.token`) or an OAuth app's access token,
refreshed from `credentials.refresh_token` (asana_oauth.py) at start and once after a 401.
The SDK's own retries are off and its thread pool closed; every request goes through
`_call`, which turns ApiExceptions (asana_errors.py) and network failures into connector
errors. The per-instance name caches of asana_names.py start empty here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import asana
import urllib3
from asana.rest import ApiException

from connectors import asana_oauth
from connectors.asana_errors import _classify
from connectors.base import ConnectionConfig
from connectors.errors import AuthExpired, InvalidMapping, Transient
from connectors.provider_clock import ProviderClock

DEFAULT_BASE_URL = "https://app.asana.com/api/1.0"
T = TypeVar("T")


class AsanaSession:
    """The SDK client of one Asana connection, and the one door its requests go through."""

    def __init__(self, config: ConnectionConfig) -> None:
        credentials = config.credentials
        # an OAuth app (refresh token) may use `external`; a personal access token may not
        self.oauth = bool(credentials.get("refresh_token"))
        self.api_base = (config.base_url or DEFAULT_BASE_URL).rstrip("/")
        self._credentials = credentials
        token = credentials.get("token")
        if not token and not self.oauth:
            raise InvalidMapping(
                f"connection {config.name!r} has no Asana token (a personal access token, or "
                "client_id, client_secret and refresh_token of an OAuth app)"
            )
        configuration = asana.Configuration()
        configuration.host = self.api_base
        configuration.access_token = token
        self._configuration = configuration
        configuration.retry_strategy = False  # errors reach _call unretried and unwrapped
        configuration.proxy = config.options.get("proxy")
        client = asana.ApiClient(configuration)
        self._client = client
        # The SDK starts a thread pool per client for async calls we never make; left to
        # its __del__ it fails at interpreter exit. Close it now.
        client.pool.close()
        client.pool.join()
        del client.pool
        self.timeout = (
            float(config.options.get("connect_timeout", 5)),
            float(config.options.get("read_timeout", 30)),
        )
        self.default_workspace: str | None = config.options.get("workspace")
        self.tasks = asana.TasksApi(client)
        self.sections = asana.SectionsApi(client)
        self.projects = asana.ProjectsApi(client)
        self.users = asana.UsersApi(client)
        self.workspaces = asana.WorkspacesApi(client)
        self.settings = asana.CustomFieldSettingsApi(client)
        self.batch = asana.BatchAPIApi(client)  # several writes in one request
        self._workspaces: dict[str, str] | None = None
        self._projects: dict[str, dict[str, str]] = {}
        self._sections: dict[str, dict[str, str]] = {}
        self._fields: dict[str, dict[str, dict[str, Any]]] = {}
        self._people: dict[str, str | None] = {}
        self.clock = ProviderClock()  # Asana's clock, for lookups by its timestamps

    # -- the one place provider failures are classified ----------------------------------------
    def _call(self, request: Callable[[], T]) -> T:
        if self.oauth and not self._configuration.access_token:
            self._refresh()
        try:
            return self._attempt(request)
        except AuthExpired:
            if not self.oauth:
                raise
            self._refresh()  # an access token lives an hour: one refresh, then it is final
            return self._attempt(request)

    def _refresh(self) -> None:
        self._configuration.access_token = asana_oauth.access_token(
            self.api_base, self._credentials
        )

    def _attempt(self, request: Callable[[], T]) -> T:
        try:
            answer = request()
        except ApiException as exc:
            raise _classify(exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            # timeouts, refused or reset connections, a response cut off mid-body
            raise Transient(f"Asana unreachable: {type(exc).__name__}: {exc}") from exc
        # the SDK keeps the last answer per client: with threads sharing it, maybe an
        # earlier one, which only widens the offset (see ProviderClock)
        last = getattr(self._client, "last_response", None)
        if last is not None:
            self.clock.observe(last.getheader("Date"))
        return answer
