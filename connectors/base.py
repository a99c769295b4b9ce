"""The contract between mappings (which plan Ops) and connectors (which apply them)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from connectors.errors import AuthExpired, ConnectorError, RateLimited
from meetsync.hashing import stable_hash


class Limits(BaseModel):
    """How fast one credential may call a provider."""

    model_config = ConfigDict(frozen=True)

    rate: float = Field(description="sustained requests per second")
    burst: int = Field(description="tokens a bucket may hold")
    concurrency: int = Field(description="writes in flight at once")


# When the op a `find()` looks for was planned: none of its writes can be older. The ledger
# knows it and the contract's `find(op)` does not carry it, so a connector that must scan
# (Asana on a personal access token) reads it here to scan only what changed since.
_WRITTEN_AFTER: ContextVar[datetime | None] = ContextVar("written_after", default=None)


@contextmanager
def written_after(moment: datetime | None) -> Iterator[None]:
    """Within this block, `find()` may assume the op's writes are all newer than `moment`."""
    token = _WRITTEN_AFTER.set(moment)
    try:
        yield
    finally:
        _WRITTEN_AFTER.reset(token)


def earliest_write() -> datetime | None:
    """What `written_after` set for the `find()` in progress; None when unknown."""
    return _WRITTEN_AFTER.get()


def payload_hash(action: str, target: dict[str, Any], fields: dict[str, Any]) -> str:
    """What an op writes, as one hash: the ledger compares it to know whether to write."""
    return stable_hash([action, target, fields])


def op_key(org_id: str, meeting_id: str, connection: str, item_key: str) -> str:
    """The idempotency key of one write: same inputs, same key, on every re-run."""
    return stable_hash([org_id, meeting_id, connection, item_key])[:32]


class Op(BaseModel):
    """One write to one destination; immutable once planned."""

    model_config = ConfigDict(frozen=True)

    key: str
    org_id: str
    meeting_id: str
    connector: str
    connection: str
    action: str
    target: dict[str, Any] = Field(default_factory=dict)
    fields: dict[str, Any] = Field(default_factory=dict)
    payload_hash: str = ""

    @classmethod
    def plan(
        cls,
        *,
        org_id: str,
        meeting_id: str,
        connector: str,
        connection: str,
        action: str,
        item_key: str,
        target: dict[str, Any],
        fields: dict[str, Any],
    ) -> Op:
        """Build an Op with its key and payload hash derived from its content."""
        return cls(
            key=op_key(org_id, meeting_id, connection, item_key),
            org_id=org_id,
            meeting_id=meeting_id,
            connector=connector,
            connection=connection,
            action=action,
            target=target,
            fields=fields,
            payload_hash=payload_hash(action, target, fields),
        )


class Receipt(BaseModel):
    """Where an applied Op landed at the provider."""

    external_id: str
    url: str | None = None
    object: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


class FieldSchema(BaseModel):
    name: str
    type: str = "string"
    label: str | None = None
    required: bool = False
    writable: bool = True
    length: int | None = None
    picklist: list[str] | None = None
    restricted: bool = False


class TargetSchema(BaseModel):
    """What a destination accepts, for validating mappings before anything is written."""

    target: dict[str, Any]
    exists: bool = True
    fields: list[FieldSchema] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    def field(self, name: str) -> FieldSchema | None:
        return next((f for f in self.fields if f.name == name), None)


class Check(BaseModel):
    """One probe of a connection (`connections test`): what was tried and what came back."""

    name: str
    ok: bool
    detail: str


class ConnectionConfig(BaseModel):
    """One org's credential for one provider, decrypted, as a connector receives it."""

    name: str
    provider: str
    base_url: str | None = None
    credentials: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)


class ConnectorFacts:
    """What a connector may say of itself beyond the protocol; each default says "nothing".

    A connector class inherits these and overrides what holds for its provider, so the rest
    of meetsync (mapping checks, closing items, the throttle) learns provider facts from
    the connector, and a new connector brings its own by being written.
    """

    # the verbs `apply` accepts, checked when a mapping is saved; () accepts any verb
    actions: ClassVar[tuple[str, ...]] = ()
    # a limit every flow of one connection shares (Slack's workspace tier), when
    # `default_limits` reads per flow (a Slack channel); None: one bucket per connection
    workspace_limits: ClassVar[Limits | None] = None
    # the credential names a connection may hold, one tuple per way of signing in, checked
    # when a connection is saved; () checks nothing
    credential_sets: ClassVar[tuple[tuple[str, ...], ...]] = ()
    # the most writes one request sends at once (`apply_many`), each a concurrent request
    # at the provider: a push's grant holds that many of the bucket's concurrency slots
    writes_at_once: ClassVar[int] = 1

    @classmethod
    def closing(cls, target: dict[str, Any]) -> dict[str, Any] | None:
        """The fields that close a per-item record at `target` (`on_missing: close`);
        None when records there cannot be closed (a Slack message stays as it is)."""
        return None

    @classmethod
    def reopening(cls, target: dict[str, Any]) -> dict[str, Any] | None:
        """The fields that reopen a record `closing` closed, unless the plan says otherwise."""
        return None

    @property
    def api_usage(self) -> tuple[int, int] | None:
        """(used, limit) of a budget the provider reports on its answers (Salesforce's
        daily API calls), read after each write so the throttle spends it down to a reserve."""
        return None


@runtime_checkable
class Connector(Protocol):
    """A destination. Implementations live one per module and register an entry point."""

    name: ClassVar[str]
    default_limits: ClassVar[Limits]

    def describe(self, target: dict[str, Any]) -> TargetSchema:
        """Fields, types, picklists and required flags of a target, for validating mappings."""
        ...

    def apply(self, op: Op, prior: Receipt | None) -> Receipt:
        """Create the object, or update the one `prior` points at."""
        ...

    def find(self, op: Op) -> Receipt | None:
        """Look up the outcome of an op whose response was lost.

        Optional, for a provider that writes several records in one request:
        `apply_many(writes: Sequence[tuple[Op, Receipt | None]]) -> list[Receipt |
        ConnectorError | None]`, each op's receipt or error, None for one never sent (a
        429 or an expired credential stopped the writes: that error is the outcome of the
        op it stopped at), never raising a ConnectorError; `writes_at_once` says how many
        one request carries (connectors/asana.py)."""
        ...


Outcome = Receipt | ConnectorError | None  # an op's, of `apply_many`


def apply_each(connector: Any, writes: Sequence[tuple[Op, Receipt | None]]) -> list[Outcome]:
    """`apply_many` one op at a time: each op's receipt or error; after a 429 or an
    expired credential, None for the ops never sent."""
    outcomes: list[Outcome] = [None] * len(writes)
    for i, (op, prior) in enumerate(writes):
        try:
            outcomes[i] = connector.apply(op, prior)
        except (RateLimited, AuthExpired) as exc:
            outcomes[i] = exc
            break
        except ConnectorError as exc:
            outcomes[i] = exc
    return outcomes
