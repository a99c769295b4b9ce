"""The op ledger: what was planned, what is in flight, what landed where.

States: `planned → sending → done`, with three dead letters: `failed` (a permanent error),
`dead` (retries exhausted) and `paused` (the connection's credential stopped working).

A push *claims* an op with one compare-and-set (`→ sending`, attempts + 1, a lease until
`lease_until`), commits, writes, then records the receipt only if it still holds that
claim. A second delivery meanwhile sees the live lease and backs off. An op left
`sending` with no live lease (a killed worker, a timeout, a dead letter replayed) is *in
doubt*: its next claim asks the connector to `find()` it before writing anything.

An op's `disposition` says what re-extractions made of its item: `missing` (no longer
extracted, record kept), `closed` (no longer extracted, record closed by `on_missing:
close`), `reopened` (closed, then extracted again: planned with the fields that reopen
it), or None.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    String,
    Table,
    and_,
    bindparam,
    case,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.sql.dml import Insert, Update

from connectors.base import Op, Receipt
from meetsync.db.models import OpRecord, utcnow
from meetsync.models import as_utc
from meetsync.states import Disposition, OpState
from workers.closing import close_fields, finishing, reopen_fields

IN_DOUBT = OpState.SENDING
RESTING = {OpState.FAILED, OpState.DEAD, OpState.PAUSED}
FINAL = RESTING | {OpState.DONE}
# review (workers/review.py): held for a person, or skipped by one; a push writes neither
HELD = {OpState.AWAITING_REVIEW, OpState.SKIPPED}
# an op's item as re-extractions saw it: gone (kept or closed), or back after being closed
GONE = {Disposition.MISSING, Disposition.CLOSED}
REOPENING = {Disposition.CLOSED, Disposition.REOPENED}


@dataclass(frozen=True)
class Claim:
    """A push's hold on one op: what to write, and whether an earlier attempt may have."""

    op: Op
    prior: Receipt | None
    in_doubt: bool
    attempt: int
    was: str = "planned"  # the state it was claimed from, restored by `unclaim`
    # an op in doubt: no earlier attempt's write is older (`find()` looks back to here)
    doubt_since: datetime | None = None


@dataclass(frozen=True)
class Busy:
    """Another push holds the op for `wait_s` more seconds."""

    wait_s: float


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


def settled(row: OpRecord) -> OpState | None:
    """The state a push can stop at without writing, or None when there is work."""
    if row.state == OpState.DONE and row.applied_hash == row.payload_hash:
        return OpState.DONE
    if row.state in RESTING or row.state in HELD:
        return OpState(row.state)
    return None


def claim(session: Session, row: OpRecord, lease_s: float, now: float) -> Claim | Busy | OpState:
    """Take the op for one write attempt, or say why not (a settled state, or Busy)."""
    return claim_many(session, [row], lease_s, now)[row.key]


def claim_many(
    session: Session, rows: Sequence[OpRecord], lease_s: float, now: float
) -> dict[str, Claim | Busy | OpState]:
    """Take each op for one write attempt in one statement, or say why not (a settled
    state, or Busy: another push holds it, or claimed it between our read and our write)."""
    answers: dict[str, Claim | Busy | OpState] = {}
    observed: list[OpRecord] = []
    for row in rows:
        if (state := settled(row)) is not None:
            answers[row.key] = state
        elif row.state == IN_DOUBT and (row.lease_until or 0.0) > now:
            answers[row.key] = Busy(row.lease_until - now if row.lease_until else 0.0)
        else:
            observed.append(row)
    if not observed:
        return answers
    # compare-and-set on the state and attempt count each op was read with
    seen = [(row.key, row.state, row.attempts) for row in observed]
    postgres = session.get_bind().dialect.name == "postgresql"
    statement = _claim() if postgres else _claim_portable(seen)
    params = {"lease_until": now + lease_s, "now": now, "updated_at": utcnow()}
    if postgres:
        keys, states, attempts = (list(column) for column in zip(*seen, strict=True))
        params |= {"read_keys": keys, "read_states": states, "read_attempts": attempts}
    taken = set(session.connection().scalars(statement, params))  # Core: session.py
    for row in observed:
        if row.key not in taken:
            answers[row.key] = Busy(0.0)
            continue
        # the UPDATE changed only the claim's own columns: the row read before still says
        # what to write and where the last write landed, so no second read
        in_doubt = row.state == IN_DOUBT
        answers[row.key] = Claim(
            to_op(row),
            prior_receipt(row),
            in_doubt,
            row.attempts + 1,
            was=row.state,
            doubt_since=_doubt_since(row) if in_doubt else None,
        )
    return answers


def _doubt_since(row: OpRecord) -> datetime:
    """When the earliest attempt that may have written the op was claimed; an op in doubt
    from before the ledger kept it goes back to its creation."""
    if row.doubt_since is not None:
        return datetime.fromtimestamp(row.doubt_since, UTC)
    return as_utc(row.created_at)


@cache
def _claim() -> Update:
    """The batch claim on PostgreSQL, built once (see `_claiming`): ops still in the (key,
    state, attempts) they were read with, as a join with the arrays unnested. Written as a
    row IN list, the planner pulls out the shared `state = 'planned'` and ANDs in the state
    index, which walks the whole backlog for each claim (10,000 entries at a 1,000-meeting
    burst) whenever its statistics lag behind; arrays also keep one statement for every
    batch size."""
    read = (
        func.unnest(
            bindparam("read_keys", type_=ARRAY(String)),
            bindparam("read_states", type_=ARRAY(String)),
            bindparam("read_attempts", type_=ARRAY(Integer)),
        )
        .table_valued("key", "state", "attempts")
        .render_derived(name="read")
    )
    return _claiming(
        and_(
            OpRecord.key == read.c.key,
            OpRecord.state == read.c.state,
            OpRecord.attempts == read.c.attempts,
        )
    )


def _claim_portable(seen: list[tuple[str, str, int]]) -> Update:
    """The batch claim elsewhere (SQLite): a row IN list of what was read."""
    return _claiming(tuple_(OpRecord.key, OpRecord.state, OpRecord.attempts).in_(seen))


def _claiming(read_as: ColumnElement[bool]) -> Update:
    """Every op `read_as` matches in doubt, with a lease, one attempt more; its keys back.

    Values are bind parameters, so a statement built once is executed again and again:
    building one (and SQLAlchemy's cache key for it) cost twice the CPU of running it."""
    return (
        update(OpRecord)
        .where(read_as)
        .values(
            state=IN_DOUBT,
            attempts=OpRecord.attempts + 1,
            lease_until=bindparam("lease_until"),
            # from a clean state this attempt is the first that may write; in doubt, the
            # earlier attempt's stamp stays
            doubt_since=case(
                (OpRecord.state == IN_DOUBT, OpRecord.doubt_since),
                else_=bindparam("now", type_=Float),
            ),
            updated_at=bindparam("updated_at"),
        )
        .returning(OpRecord.key)
        .execution_options(synchronize_session=False)
    )


def unclaim(session: Session, claim: Claim) -> bool:
    """Give back an op claimed but never written: as it was read, so no find() is owed."""
    values: dict[str, Any] = {"state": claim.was, "attempts": claim.attempt - 1}
    values["lease_until"] = 0.0 if claim.was == IN_DOUBT else None
    return while_held(session, claim.op.key, claim.attempt, values)


def record_landed(session: Session, landed: Sequence[tuple[str, int, Receipt, str]]) -> set[str]:
    """Record landed writes `(key, attempt, receipt, applied hash)` in one statement, each
    only while its attempt still holds the op; the keys recorded."""
    if not landed:
        return set()
    result = session.execute(
        _record_landed(),
        [
            {
                "b_key": key,
                "b_attempt": attempt,
                "b_external_id": receipt.external_id,
                "b_url": receipt.url,
                "b_object": receipt.object,
                "b_receipt": receipt.model_dump(mode="json"),
                "b_applied": applied,
            }
            for key, attempt, receipt, applied in landed
        ],
    )
    if result.rowcount == len(landed):  # type: ignore[attr-defined]
        return {key for key, *_ in landed}
    # some lease ran out and another push took over: ours are those done at our attempt
    attempts = {key: attempt for key, attempt, *_ in landed}
    rows = session.execute(
        select(OpRecord.key, OpRecord.state, OpRecord.attempts).where(
            OpRecord.key.in_(list(attempts))
        )
    )
    return {key for key, state, tries in rows if state == OpState.DONE and tries == attempts[key]}


@cache
def _record_landed() -> Update:
    """One landed write's receipt, while its attempt still holds the op (Core: the ORM's
    bulk UPDATE by primary key would drop the attempt condition). Built once."""
    table = cast(Table, OpRecord.__table__)
    c = table.c
    return (
        update(table)
        .where(
            c.key == bindparam("b_key"), c.state == IN_DOUBT, c.attempts == bindparam("b_attempt")
        )
        .values(
            state=OpState.DONE,
            lease_until=None,
            last_error=None,
            external_id=bindparam("b_external_id"),
            url=bindparam("b_url"),
            object=bindparam("b_object"),
            receipt=bindparam("b_receipt", type_=c.receipt.type),
            applied_hash=bindparam("b_applied"),
        )
    )


def holds(row: OpRecord, attempt: int) -> bool:
    """Whether the push that made `attempt` still owns the op."""
    return row.state == IN_DOUBT and row.attempts == attempt


def while_held(session: Session, key: str, attempt: int, values: Mapping[str, Any]) -> bool:
    """Write `values` only while the push that made `attempt` still holds the op.

    One conditional UPDATE, no read: after its write a push records what happened only if
    its lease was not taken over meanwhile (the new holder finds the write instead).
    """
    hit = session.execute(
        update(OpRecord)
        .where(OpRecord.key == key, OpRecord.state == IN_DOUBT, OpRecord.attempts == attempt)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(hit.rowcount == 1)  # type: ignore[attr-defined]


def found(receipt: Receipt) -> dict[str, Any]:
    """An in-doubt op turned out to exist: remember where, without claiming its payload."""
    return {
        "external_id": receipt.external_id,
        "url": receipt.url,
        "object": receipt.object,
        "receipt": receipt.model_dump(mode="json"),
    }


def released(reason: str) -> dict[str, Any]:
    """The attempt ended without an answer: stay in doubt, but free for the next push."""
    return {"lease_until": 0.0, "last_error": reason}


def done(receipt: Receipt, applied_hash: str) -> dict[str, Any]:
    return {
        **found(receipt),
        "state": OpState.DONE,
        "lease_until": None,
        "applied_hash": applied_hash,
        "last_error": None,
    }


def resting(state: OpState, reason: str) -> dict[str, Any]:
    """A dead letter with its reason; `sending` history stays in attempts."""
    assert state in RESTING
    return {"state": state, "lease_until": None, "last_error": reason}


def mark_resting(row: OpRecord, state: OpState, reason: str) -> None:
    """Park a loaded op as a dead letter (see `resting`)."""
    for name, value in resting(state, reason).items():
        setattr(row, name, value)


def leased(row: OpRecord, now: float) -> bool:
    """Whether some push holds the op right now."""
    return row.state == IN_DOUBT and (row.lease_until or 0.0) > now


def replay(row: OpRecord) -> bool:
    """Put a dead letter back in line; an op that may have been written goes in doubt."""
    if row.state not in RESTING:
        return False
    confirmed = row.external_id is not None and row.applied_hash == row.payload_hash
    # an attempt that reached the provider may have landed: the next push runs find() first
    row.state = IN_DOUBT if row.attempts and not confirmed else "planned"
    row.lease_until = 0.0 if row.state == IN_DOUBT else None
    return True


def record_plan(
    session: Session,
    meeting_id: str,
    ops: Iterable[Op],
    mapping_version: int | None,
    identities: Mapping[str, dict[str, str]] | None = None,
) -> list[OpRecord]:
    """Upsert planned ops; return the rows that need a push (new or changed payload)."""
    identities = identities or {}
    ops = list(ops)
    # one read for every key, and the new rows written together: one INSERT for the plan
    with session.no_autoflush:
        stored = session.scalars(ops_by_key(), {"keys": [o.key for o in ops]})
        existing = {row.key: row for row in stored}
    to_push: list[OpRecord | str] = []  # a new row's key until it is inserted
    new: dict[str, dict[str, Any]] = {}
    for op in ops:
        identity = identities.get(op.key)
        row = existing.get(op.key)
        if row is None:
            if op.key not in new:
                to_push.append(op.key)
            new[op.key] = _new_row(op, meeting_id, mapping_version, identity)  # the last wins
            continue
        if identity is not None:
            row.item, row.destination = identity, identity.get("destination")
        op, row.disposition = reopened(op, row.disposition)
        if row.payload_hash == op.payload_hash and row.state == "done":
            continue
        if row.payload_hash != op.payload_hash:
            repay(row, op.target, op.fields, op.payload_hash)
            row.mapping_version = mapping_version
            if row.state in (OpState.FAILED, OpState.DEAD) and replay(row):
                row.last_error = None  # a new payload (a fixed mapping) earns a new attempt
        if row.state not in RESTING:
            to_push.append(row)
    session.flush()
    inserted = _inserted(session, list(new.values()))
    return [inserted[r] if isinstance(r, str) else r for r in to_push]


def _new_row(
    op: Op, meeting_id: str, mapping_version: int | None, identity: dict[str, str] | None
) -> dict[str, Any]:
    """Every column of a newly planned op's row but `receipt` (left SQL NULL)."""
    now = utcnow()
    return {
        "key": op.key,
        "org_id": op.org_id,
        "meeting_id": meeting_id,
        "connector": op.connector,
        "connection": op.connection,
        "action": op.action,
        "target": op.target,
        "fields": op.fields,
        "payload_hash": op.payload_hash,
        "applied_hash": None,
        "state": "planned",
        "attempts": 0,
        "last_error": None,
        "external_id": None,
        "object": None,
        "url": None,
        "mapping_version": mapping_version,
        "lease_until": None,
        "doubt_since": None,
        "destination": (identity or {}).get("destination"),
        "item": identity,
        "disposition": None,
        "created_at": now,
        "updated_at": now,
    }


def _inserted(session: Session, rows: list[dict[str, Any]]) -> dict[str, OpRecord]:
    """New ledger rows in one Core INSERT, then in the session as if loaded by a query.

    The ORM's flush of new objects cost more client CPU than planning them (unit of work,
    per-object history); the rows it returns are persistent, with every column set, so a
    change made to one later in the transaction (a review hold) is flushed as an UPDATE.
    """
    if not rows:
        return {}
    session.connection().execute(_insert_ops(), rows)
    records = {}
    for values in rows:
        record = OpRecord(**values, receipt=None)
        make_transient_to_detached(record)
        records[record.key] = record
    session.add_all(records.values())
    return records


@cache
def _insert_ops() -> Insert:
    return insert(OpRecord)


@cache
def ops_by_key() -> Select[OpRecord]:
    """Ops by their keys (`keys`), built once (meetsync/db/session.py): planning and every
    push with links ask it."""
    return select(OpRecord).where(OpRecord.key.in_(bindparam("keys", expanding=True)))


def reopened(op: Op, disposition: str | None) -> tuple[Op, str | None]:
    """An op planned again and its new disposition: a record we closed is reopened.

    Once reopened it stays `reopened` (and keeps the reopening fields) on later runs, so
    an unchanged re-run plans the same payload and writes nothing.
    """
    if disposition == Disposition.DONE and (done := close_fields(op.connector, op.target)):
        target, fields, payload = finishing(op.action, op.target, op.fields, done)
        update = {"target": target, "fields": fields, "payload_hash": payload}
        return op.model_copy(update=update), disposition  # a later meeting said it is done
    status = reopen_fields(op.connector, op.target, op.fields)
    if disposition not in REOPENING or status is None:
        return op, None  # planned again: no longer missing
    target, fields, payload = finishing(op.action, op.target, op.fields, status)
    return op.model_copy(
        update={"target": target, "fields": fields, "payload_hash": payload}
    ), "reopened"


def repay(row: OpRecord, target: dict[str, Any], fields: dict[str, Any], payload_hash: str) -> None:
    """A new payload for an existing op; an op in doubt stays in doubt."""
    row.target, row.fields, row.payload_hash = target, fields, payload_hash
    if row.state not in RESTING and row.state != IN_DOUBT:
        row.state = "planned"
