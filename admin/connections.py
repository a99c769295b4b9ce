"""An org's provider connections: credentials sealed at rest, shown only by their key names."""

from __future__ import annotations

import re
from typing import Any

import yaml
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from admin.errors import AlreadyExists, Invalid, NotFound
from admin.orgs import get_org
from connectors.base import Check, Connector
from connectors.errors import ConnectorError
from connectors.registry import UnknownConnector, available, build, connector_class
from meetsync.crypto import rotate, seal, unseal
from meetsync.db.models import Connection, MappingVersion, OpRecord
from meetsync.masking import mask_secrets, mask_text
from meetsync.models import UtcDatetime
from meetsync.settings import Settings
from meetsync.states import ConnectionStatus
from workers import connections as owned
from workers.throttle.limits import make_throttle

REDACTED = "**********"
NAME = re.compile(r"[A-Za-z0-9_.\-]{1,100}")


class ConnectionOut(BaseModel):
    """A connection as the CLI and the API show it: credential names, never their values."""

    name: str
    org_id: str
    provider: str
    base_url: str | None
    credential_keys: list[str]
    options: dict[str, Any]
    status: str
    status_reason: str | None
    created_at: UtcDatetime


class TestReport(BaseModel):
    """What `connections test` found: each probe, and whether all of them worked."""

    connection: str
    provider: str
    ok: bool
    checks: list[Check]


def add_connection(
    session: Session,
    settings: Settings,
    *,
    org_id: str,
    name: str,
    provider: str,
    credentials: dict[str, str],
    base_url: str | None = None,
    options: dict[str, Any] | None = None,
    replace: bool = False,
) -> Connection:
    """Store a connection with its credentials sealed; `replace` updates one of the same org."""
    get_org(session, org_id)
    if not NAME.fullmatch(name):
        raise Invalid(f"a connection name is 1-100 of A-Z a-z 0-9 _ . - (not {name!r})")
    if provider not in available():
        known = ", ".join(sorted(available())) or "none"
        raise Invalid(f"no connector named {provider!r}; installed: {known}")
    empty = sorted(k for k, v in credentials.items() if not isinstance(v, str) or not v)
    if not credentials or empty:
        raise Invalid(f"credentials need non-empty values (empty: {', '.join(empty) or 'all'})")
    check_credential_names(provider, credentials)
    try:
        owned.check_endpoints(settings, provider, base_url, dict(options or {}))
    except owned.EndpointRefused as exc:
        raise Invalid(str(exc)) from None
    row = session.get(Connection, name)
    if row is not None and row.org_id != org_id:
        # connection names are global: say it is taken, never whose it is
        raise AlreadyExists(f"the connection name {name!r} is taken; choose another name")
    if row is not None and not replace:
        raise AlreadyExists(
            f"connection {name!r} exists in this org: replace it (--replace), "
            "or choose another name"
        )
    if row is None:
        row = Connection(name=name, org_id=org_id, provider=provider)
        session.add(row)
    row.provider = provider
    row.base_url = base_url
    row.credentials = seal(settings, credentials)
    row.options = dict(options or {})
    row.status, row.status_reason = "active", None
    session.flush()
    return row


def check_credential_names(provider: str, credentials: dict[str, str]) -> None:
    """Invalid unless the names are one of the provider's ways of signing in, exactly."""
    sets = getattr(connector_class(provider), "credential_sets", ())
    if not sets:
        return
    given = set(credentials)
    if any(given == set(names) for names in sets):
        return
    ways = "; or ".join(", ".join(names) for names in sets)
    closest = min(sets, key=lambda names: len(set(names) ^ given))
    missing = [n for n in closest if n not in given]
    known = {n for names in sets for n in names}
    unknown = sorted(given - known)
    extra = sorted((given & known) - set(closest))
    said = [f"missing: {', '.join(missing)}"] if missing else []
    said += [f"not a {provider} credential: {', '.join(unknown)}"] if unknown else []
    said += [f"not with the others: {', '.join(extra)}"] if extra else []
    raise Invalid(f"{provider} takes the credentials {ways} ({'; '.join(said)})")


def get_connection(session: Session, name: str, org_id: str | None = None) -> Connection:
    """A connection by name; NotFound also when it belongs to another org than `org_id`."""
    row = session.get(Connection, name)
    if row is None or (org_id is not None and row.org_id != org_id):
        raise NotFound(f"no connection named {name!r}" + (" in this org" if org_id else ""))
    return row


def list_connections(
    session: Session, settings: Settings, org_id: str | None = None
) -> list[ConnectionOut]:
    query = select(Connection).order_by(Connection.org_id, Connection.name)
    if org_id is not None:
        query = query.where(Connection.org_id == org_id)
    return [describe_connection(settings, row) for row in session.scalars(query)]


def describe_connection(settings: Settings, row: Connection) -> ConnectionOut:
    """The connection without its secrets: only the names of its credential keys."""
    return ConnectionOut(
        name=row.name,
        org_id=row.org_id,
        provider=row.provider,
        base_url=mask_text(row.base_url) if row.base_url else None,
        credential_keys=sorted(unseal(settings, row.credentials)),
        options=mask_secrets(dict(row.options or {})),
        status=row.status,
        status_reason=mask_text(row.status_reason) if row.status_reason else None,
        created_at=row.created_at,
    )


def remove_connection(
    session: Session, name: str, org_id: str | None = None, *, force: bool = False
) -> None:
    """Delete a connection unless the org's current mapping still writes through it."""
    row = get_connection(session, name, org_id)
    latest = session.scalars(
        select(MappingVersion)
        .where(MappingVersion.org_id == row.org_id)
        .order_by(MappingVersion.version.desc())
        .limit(1)
    ).first()
    if latest is not None and not force and _names_connection(latest.body, name):
        raise Invalid(
            f"mapping version {latest.version} of {row.org_id} writes through {name!r}; "
            "apply a mapping without it first (or force)"
        )
    session.delete(row)


def _names_connection(body: str, name: str) -> bool:
    try:
        data = yaml.safe_load(body) or {}
    except yaml.YAMLError:
        return False
    connections = data.get("connections") if isinstance(data, dict) else None
    return isinstance(connections, dict) and name in connections.values()


def build_connector(
    session: Session, settings: Settings, connection: str, *, org_id: str
) -> Connector:
    """A fresh connector for the org's connection: NotFound for another org's, Invalid for
    one whose endpoints the operator does not allow (the check is `workers.connections`')."""
    try:
        return owned.build_connector(session, settings, connection, org_id=org_id)
    except owned.ConnectionMissing as exc:
        raise NotFound(str(exc)) from None
    except owned.EndpointRefused as exc:
        raise Invalid(f"connection {connection!r}: {exc}") from None


# what a check may show an org admin: the provider's code and message, bounded
MAX_DETAIL = 300


def test_connection(
    session: Session, settings: Settings, name: str, org_id: str | None = None
) -> TestReport:
    """Call the provider's identity endpoints and report what works and what does not."""
    row = get_connection(session, name, org_id)
    try:
        config = owned.connection_config(session, settings, name, org_id=row.org_id)
    except owned.EndpointRefused as exc:
        refused = Check(name="endpoints", ok=False, detail=str(exc))
        return TestReport(connection=name, provider=row.provider, ok=False, checks=[refused])
    try:
        connector = build(config)
        check = getattr(connector, "check", None)
        if check is None:
            checks = [Check(name="check", ok=False, detail=f"{row.provider} has no check()")]
        else:
            checks = list(check())
    except (ConnectorError, UnknownConnector) as exc:
        checks = [Check(name="connect", ok=False, detail=f"{type(exc).__name__}: {exc}")]
    except Exception as exc:  # an answer of a shape the connector did not expect
        detail = f"the provider's answer was not what {row.provider} answers ({type(exc).__name__})"
        checks = [Check(name="connect", ok=False, detail=detail)]
    secrets = [str(v) for v in config.credentials.values() if v]
    checks = [c.model_copy(update={"detail": _shown(c.detail, secrets)}) for c in checks]
    return TestReport(
        connection=name,
        provider=row.provider,
        ok=all(c.ok for c in checks),
        checks=checks,
    )


def _shown(detail: str, secrets: list[str]) -> str:
    """A check's detail as an org admin may see it: no secret, no control characters, short."""
    text = "".join(ch if ch.isprintable() else " " for ch in redact(detail, secrets))
    text = mask_text(text)
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"


def redact(text: str, secrets: list[str]) -> str:
    """`text` with every secret replaced, in case a provider echoes one back."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return text


def rotate_keys(session: Session, settings: Settings) -> int:
    """Re-seal every connection under the newest key; the count re-sealed."""
    rows = list(session.scalars(select(Connection)))
    for row in rows:
        row.credentials = rotate(settings, row.credentials)
    return len(rows)


class Health(BaseModel):
    """A connection as the console shows it: paused or not, and the provider's last words."""

    connection: ConnectionOut
    paused: bool
    last_error: str | None  # the provider's words, from the newest op that failed through it
    last_error_at: UtcDatetime | None
    throttle: str | None = None  # its bucket as the workers share it; None if none seen


def health(session: Session, settings: Settings, org_id: str) -> list[Health]:
    """Each of the org's connections with whether it is paused, its last provider error and
    its throttle (tokens, slots, a 429's cooldown)."""
    found = []
    buckets = throttle_buckets(settings)
    for out in list_connections(session, settings, org_id):
        failed = session.scalars(
            select(OpRecord)
            .where(
                OpRecord.org_id == org_id,
                OpRecord.connection == out.name,
                OpRecord.last_error.is_not(None),
            )
            .order_by(OpRecord.updated_at.desc())
            .limit(1)
        ).first()
        found.append(
            Health(
                connection=out,
                paused=out.status == ConnectionStatus.PAUSED,
                last_error=mask_text(failed.last_error) if failed and failed.last_error else None,
                last_error_at=failed.updated_at if failed else None,
                throttle=buckets.get(f"{out.provider}:{out.name}"),
            )
        )
    return found


def throttle_buckets(settings: Settings) -> dict[str, str]:
    """Each throttle bucket the workers share, described in a phrase; {} when the throttle
    cannot be read (the in-process workers keep theirs to themselves)."""
    try:
        rows = make_throttle(settings).status()
    except Exception:  # Redis down or unreachable: the page shows no throttle, not an error
        return {}
    described = {}
    for row in rows:
        text = f"{row.tokens:.1f}/{row.burst:.0f} tokens, {row.slots_held}/{row.concurrency} slots"
        if row.cooldown_ms:
            text = f"cooling down {row.cooldown_ms / 1000:.1f} s after a 429; " + text
        described[row.bucket] = text
    return described


def set_paused(
    session: Session, name: str, org_id: str, *, paused: bool, reason: str | None = None
) -> Connection:
    """Pause a connection (its pushes rest as `paused` dead letters) or resume it."""
    row = get_connection(session, name, org_id)
    if paused:
        row.status, row.status_reason = ConnectionStatus.PAUSED, reason or "paused by an admin"
    else:
        row.status, row.status_reason = ConnectionStatus.ACTIVE, None
    session.flush()
    return row


def rotate_credentials(
    session: Session, settings: Settings, name: str, org_id: str, credentials: dict[str, str]
) -> Connection:
    """Replace a connection's credentials, keeping its provider, endpoints and options."""
    row = get_connection(session, name, org_id)
    return add_connection(
        session,
        settings,
        org_id=org_id,
        name=name,
        provider=row.provider,
        credentials=credentials,
        base_url=row.base_url,
        options=dict(row.options or {}),
        replace=True,
    )


def providers() -> list[str]:
    """The connectors installed, for choosing a new connection's provider."""
    return sorted(available())
