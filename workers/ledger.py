"""The op ledger: what was planned, what is in flight, what landed where.

States: `planned → sending → done`, with `failed` (permanent error: a dead letter),
`dead` (retries exhausted), and `paused` (the connection's credential stopped working).
An op left `sending` by a crash or a timeout is *in doubt*: the next attempt asks the
connector to `find()` it before writing anything.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from connectors.base import Op, Receipt
from meetsync.db.models import OpRecord

IN_DOUBT = "sending"
RESTING = {"failed", "dead", "paused"}


def to_op(row: OpRecord) -> Op:
    return Op(
        key=row.key,
        org_id=row.org_id,
        meeting_id=row.meeting_id,
        connector=row.connector,
        connection=row.connection,
        action=row.action,
        target=row.target,
        fields=row.fields,
        payload_hash=row.payload_hash,
    )


def prior_receipt(row: OpRecord) -> Receipt | None:
    """The receipt of the last successful write, if any."""
    if row.external_id is None:
        return None
    return Receipt(
        external_id=row.external_id,
        url=row.url,
        object=row.object,
        extra=(row.receipt or {}).get("extra", {}),
    )


def record_plan(
    session: Session, meeting_id: str, ops: Iterable[Op], mapping_version: int | None
) -> list[OpRecord]:
    """Upsert planned ops; return the rows that need a push (new or changed payload)."""
    to_push: list[OpRecord] = []
    for op in ops:
        row = session.get(OpRecord, op.key)
        if row is None:
            row = OpRecord(
                key=op.key,
                org_id=op.org_id,
                meeting_id=meeting_id,
                connector=op.connector,
                connection=op.connection,
                action=op.action,
                target=op.target,
                fields=op.fields,
                payload_hash=op.payload_hash,
                state="planned",
                mapping_version=mapping_version,
            )
            session.add(row)
            to_push.append(row)
            continue
        if row.payload_hash == op.payload_hash and row.state == "done":
            continue
        if row.payload_hash != op.payload_hash:
            row.target, row.fields, row.payload_hash = op.target, op.fields, op.payload_hash
            row.mapping_version = mapping_version
            if row.state != IN_DOUBT:
                row.state = "planned"
        if row.state not in RESTING:
            to_push.append(row)
    session.flush()
    return to_push


def mark_sending(row: OpRecord) -> None:
    row.state = IN_DOUBT
    row.attempts += 1


def mark_done(row: OpRecord, receipt: Receipt, applied_hash: str) -> None:
    row.state = "done"
    row.applied_hash = applied_hash
    row.external_id = receipt.external_id
    row.url = receipt.url
    row.object = receipt.object
    row.receipt = receipt.model_dump(mode="json")
    row.last_error = None


def mark_found(row: OpRecord, receipt: Receipt) -> None:
    """An in-doubt op turned out to exist: remember where, without claiming its payload."""
    row.external_id, row.url, row.object = receipt.external_id, receipt.url, receipt.object
    row.receipt = receipt.model_dump(mode="json")


def mark_resting(row: OpRecord, state: str, reason: str) -> None:
    assert state in RESTING
    row.state = state
    row.last_error = reason
