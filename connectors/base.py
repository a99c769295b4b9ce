"""The contract between mappings (which plan Ops) and connectors (which apply them)."""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field


class Limits(BaseModel):
    """How fast one credential may call a provider."""

    model_config = ConfigDict(frozen=True)

    rate: float = Field(description="sustained requests per second")
    burst: int = Field(description="tokens a bucket may hold")
    concurrency: int = Field(description="writes in flight at once")


def stable_hash(value: Any) -> str:
    """A hash of a JSON-able value that does not depend on key order."""
    blob = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


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
            payload_hash=stable_hash([action, target, fields]),
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
        """Look up the outcome of an op whose response was lost."""
        ...
