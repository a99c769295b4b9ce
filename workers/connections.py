"""Connectors built from stored connections: the one place that checks whose they are.

Every path that calls a provider with an org's credentials (preview, validate, test, push,
backfill) builds its connector here, with the org it acts for. A connection of another org
is "not in this org", whatever its name says; a base URL, proxy or CA file outside the
provider's own hosts and the operator's allow-list (`settings.endpoints`) is refused
before a credential leaves the process.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from connectors.base import ConnectionConfig, Connector
from connectors.registry import UnknownConnector, build, connector_class
from meetsync.crypto import unseal
from meetsync.db.models import Connection
from meetsync.settings import Settings

# options that name a URL the connector calls with the credential
URL_OPTIONS = ("login_url",)


class ConnectionMissing(LookupError):
    """No connection of that name in the org asked for (another org's is missing too)."""


class EndpointRefused(ValueError):
    """A connection names an endpoint neither its provider nor the operator allows."""


def owned_connection(session: Session, name: str, *, org_id: str) -> Connection:
    """The org's connection of that name; ConnectionMissing for another org's as for none."""
    row = session.get(Connection, name)
    if row is None or row.org_id != org_id:
        raise ConnectionMissing(f"no connection named {name!r} in this org")
    return row


def provider_hosts(provider: str) -> tuple[str, ...]:
    """The hosts a provider's connector may call ('*.domain' for its subdomains)."""
    try:
        hosts: tuple[str, ...] = tuple(getattr(connector_class(provider), "endpoint_hosts", ()))
    except UnknownConnector:
        return ()
    return hosts


def check_endpoints(
    settings: Settings, provider: str, base_url: str | None, options: dict[str, Any]
) -> None:
    """EndpointRefused unless every endpoint of a connection is its provider's or allowed."""
    allowed = settings.endpoints
    for label, url in [("base_url", base_url)] + [(k, options.get(k)) for k in URL_OPTIONS]:
        if url is not None:
            _check_url(label, str(url), provider_hosts(provider), allowed.allowed_hosts)
    for label, listed, setting in (
        ("proxy", allowed.proxies, "MEETSYNC_ENDPOINTS__PROXIES"),
        ("ca_file", allowed.ca_files, "MEETSYNC_ENDPOINTS__CA_FILES"),
    ):
        value = options.get(label)
        if value not in (None, "") and str(value) not in listed:
            raise EndpointRefused(
                f"option {label} is not one the operator allows; "
                f"ask the operator to list it in {setting}"
            )


def _check_url(label: str, url: str, provider: tuple[str, ...], operator: list[str]) -> None:
    parts = urlsplit(url)
    try:
        host, port = (parts.hostname or "").lower(), parts.port
    except ValueError:
        host, port = "", None
    if parts.scheme not in ("https", "http") or not host or parts.username or parts.password:
        raise EndpointRefused(f"{label} must be an http(s) URL with a host and no credentials")
    if parts.scheme == "https" and port in (None, 443) and _matches(host, None, provider):
        return
    if _matches(host, port or (443 if parts.scheme == "https" else 80), operator):
        return
    hosts = ", ".join(provider) or "none"
    raise EndpointRefused(
        f"{label} host {parts.netloc!r} is neither the provider's (https://{hosts}) nor one "
        "the operator allows (MEETSYNC_ENDPOINTS__ALLOWED_HOSTS)"
    )


def _matches(host: str, port: int | None, patterns: list[str] | tuple[str, ...]) -> bool:
    for pattern in patterns:
        entry = urlsplit(f"//{pattern.lower()}")
        try:
            want_host, want_port = entry.hostname or "", entry.port
        except ValueError:
            continue
        if want_port is not None and want_port != port:
            continue
        if want_host.startswith("*.") and host.endswith(want_host[1:]):
            return True
        if host == want_host:
            return True
    return False


def connection_config(
    session: Session, settings: Settings, name: str, *, org_id: str
) -> ConnectionConfig:
    """The org's connection, decrypted, its endpoints checked: what a connector is built on."""
    row = owned_connection(session, name, org_id=org_id)
    options = dict(row.options or {})
    check_endpoints(settings, row.provider, row.base_url, options)
    return ConnectionConfig(
        name=row.name,
        provider=row.provider,
        base_url=row.base_url,
        credentials=unseal(settings, row.credentials),
        options=options,
    )


def build_connector(session: Session, settings: Settings, name: str, *, org_id: str) -> Connector:
    """A fresh connector for the org's connection (fresh: it sees the provider as it is)."""
    return build(connection_config(session, settings, name, org_id=org_id))


class ConnectorCache:
    """Connectors keep SDK sessions and lookup caches, so build each connection once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._built: dict[tuple[str, str, str, str], Connector] = {}
        self._lock = threading.Lock()

    def cached(self, name: str) -> Connector | None:
        """The connector last built for a connection, without a database read."""
        with self._lock:
            built = [c for key, c in self._built.items() if key[0] == name]
        return built[-1] if built else None

    def get(self, session: Session, name: str, *, org_id: str) -> Connector:
        row = owned_connection(session, name, org_id=org_id)
        # a changed URL or options (not just credentials) builds anew, and is checked anew
        options = repr(sorted((row.options or {}).items()))
        cache_key = (name, row.credentials, str(row.base_url), options)
        with self._lock:
            if cache_key not in self._built:
                config = connection_config(session, self.settings, name, org_id=org_id)
                self._built[cache_key] = build(config)
            return self._built[cache_key]
