"""What each connector's contract case provides; one module per provider fills it in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from connectors.base import Connector, Op
from connectors.errors import ConnectorError
from sandbox.client import SandboxClient


@dataclass(frozen=True)
class Refusal:
    """A refusal the real provider answers some writes with, armed as a fault on the write,
    and what the connector must make of it: the error class, the code, the provider's words."""

    fault: dict[str, Any]
    error: type[ConnectorError]
    code: str
    words: str


class ContractCase(Protocol):
    provider: str
    connector: Connector
    admin: SandboxClient
    write_path: str  # path prefix of the request that creates the object, for arming faults

    def op(self, variant: str = "a") -> Op:
        """The same op key for every variant; a new variant changes the payload."""
        ...

    def held(self, op: Op) -> list[dict[str, Any]]:
        """Objects the provider holds for this op, read through the inspection API."""
        ...

    def reflects(self, obj: dict[str, Any], op: Op) -> bool:
        """True when a held object carries the op's current payload."""
        ...

    def rejected_op(self) -> Op:
        """An op the provider refuses for good (bad field, unknown channel, …)."""
        ...

    def refusals(self) -> list[Refusal]:
        """The provider's own refusals of a write (a locked row, a flow, a premium feature)."""
        ...

    def set_auth(self, action: str) -> None:
        """'expire' (refreshable), 'revoke' (not), or 'restore', via the admin API."""
        ...
