"""The push stage: a meeting's ops for one connection written by one message, each at most once.

A push message carries the keys of one meeting's ops for one connection (`workers.batching`
makes the groups). The stage reads them in one statement, takes one throttle turn for
the ops there is something to write for (one token each), claims them in one
compare-and-set, writes them in order (`find()` first for an op in doubt; all in one call to
a connector that has `apply_many`, such as Asana's batch requests), and records what landed
in one transaction. The ledger's per-op guarantees are those of a single push:

- an op is claimed with its observed state and attempt count, so two deliveries of the
  same message never write the same op twice (the second sees a live lease: busy);
- an op the batch never got to (a 429 or a crash before its turn) is *unclaimed*: back to
  the state it was read in, nothing sent, so it needs no `find()` later;
- a write that landed but could not be recorded (a crash between them) leaves its op in
  doubt until the lease runs out; its next push finds it instead of writing again; a crash
  inside an `apply_many` call leaves every op of the call in doubt.

One op's `Permanent` error fails that op and the batch goes on; a `Transient` one
releases it (in doubt) and the others go on, then the message is retried for what is
left; a 429 stops the batch and it comes back after the provider's wait; an expired
credential pauses the connection and every op of the batch not yet written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from connectors.base import Op, Receipt, written_after
from connectors.errors import AuthExpired, ConnectorError, Permanent, RateLimited, Transient
from meetsync.db.models import Connection, Meeting, OpRecord
from meetsync.states import ConnectionStatus, OpState, PushState
from workers import enrich, ledger
from workers.instrumented import Instrumented
from workers.lanes import Later, Route
from workers.runtime import Runtime

log = logging.getLogger(__name__)

RECORD_PAUSE_S = 0.1  # first wait before recording receipts again; doubles up to the max
RECORD_PAUSE_MAX_S = 2.0

# what brings a push back later; every other state is final for this delivery (a push
# waiting for linked records is woken by the push that settles the last of them)
COME_BACK = {PushState.QUEUED, PushState.THROTTLED, PushState.BUSY}
# what may let an op that waits for this one go
SETTLING = {PushState.DONE, PushState.FAILED, PushState.DEAD, PushState.PAUSED}
# of several reasons to come back, the one the message comes back with: a 429 cools its
# bucket (the throttle middleware), a turn not yet given keeps its ticket
COME_BACK_ORDER = (PushState.THROTTLED, PushState.QUEUED, PushState.BUSY)


class OpGone(LookupError):
    """The message names an op (or meeting) that no longer exists."""


@dataclass(frozen=True)
class Planned:
    """An op to push, and the route that picks its lane and throttle bucket."""

    key: str
    route: Route
    meeting_id: str = ""  # ops of one meeting and route travel in one message
    # it waits for ops pushed with it, whose settling wakes it (workers.enrich): the
    # pipeline does not send it now, sparing a push that could only answer `waiting`
    deferred: bool = False

    @property
    def connector(self) -> str:
        return self.route.connector


def route_of(row: OpRecord, backfill: bool, unawaited: bool = False) -> Route:
    return Route(
        org=row.org_id,
        connector=row.connector,
        connection=row.connection,
        channel=(row.target or {}).get("channel"),
        backfill=backfill,
        unawaited=unawaited,
    )


def planned(
    row: OpRecord, backfill: bool, unawaited: bool = False, deferred: bool = False
) -> Planned:
    return Planned(row.key, route_of(row, backfill, unawaited), row.meeting_id, deferred)


@dataclass
class Pushed:
    """What became of each op of one message, and the wait before coming back for the rest."""

    states: dict[str, PushState] = field(default_factory=dict)
    meetings: dict[str, str] = field(default_factory=dict)  # key → meeting, of settled ops
    waits: dict[PushState, float] = field(default_factory=dict)  # come-back reason → seconds
    transient: str | None = None  # an op failed transiently: the message is retried

    def settle(self, key: str, state: PushState, meeting_id: str | None = None) -> None:
        self.states[key] = state
        if meeting_id is not None and state in SETTLING:
            self.meetings[key] = meeting_id

    def come_back(self, key: str, state: PushState, wait_s: float) -> None:
        self.states[key] = state
        self.waits[state] = max(self.waits.get(state, 0.0), wait_s)

    def settled_by_meeting(self) -> dict[str, list[str]]:
        """The ops that settled here (done, failed, dead, paused), by meeting: whose waiters
        may go now."""
        by_meeting: dict[str, list[str]] = {}
        for key, meeting_id in self.meetings.items():
            by_meeting.setdefault(meeting_id, []).append(key)
        return by_meeting

    def later(self) -> Later | None:
        """The answer that brings the message back (a turn, a 429, a busy op), if any."""
        for state in COME_BACK_ORDER:
            if state in self.waits:
                return Later(max(1, int(self.waits[state] * 1000)), state)
        return None


@dataclass(frozen=True)
class PushOutcome:
    """One op's push (`push`): its state, the wait before coming back, whose waiters to wake."""

    state: PushState
    retry_after: float | None = None
    meeting_id: str | None = None

    def later(self) -> Later | None:
        if self.state not in COME_BACK or self.retry_after is None:
            return None
        return Later(max(1, int(self.retry_after * 1000)), self.state)


def push(runtime: Runtime, key: str, turn: Callable[[int], bool] = lambda _: True) -> PushOutcome:
    """One op's push (see `push_ops`); a transient failure is raised."""
    pushed = push_ops(runtime, [key], turn)
    if pushed.transient is not None:
        raise Transient(pushed.transient)
    state = pushed.states.get(key, PushState.DONE)
    return PushOutcome(state, pushed.waits.get(state), pushed.meetings.get(key))


@dataclass(frozen=True)
class _Write:
    """A claimed op and what it takes to write it."""

    claim: ledger.Claim
    op: Op  # with its links filled in (a recap)
    connector: Instrumented


def push_ops(
    runtime: Runtime, keys: Sequence[str], turn: Callable[[int], bool] = lambda _: True
) -> Pushed:
    """Apply each op at most once: claim them, find() what is in doubt, write, record.

    The ops are read once. `turn(n)` is asked only when there are `n` ops to write, so a
    message answered without the provider (settled, paused, waiting) spends no turn.
    """
    pushed = Pushed()
    writes = _claimed(runtime, keys, turn, pushed)
    if writes:
        _write_all(runtime, writes, pushed)
    return pushed


def _claimed(
    runtime: Runtime, keys: Sequence[str], turn: Callable[[int], bool], pushed: Pushed
) -> list[_Write]:
    """Read the ops, answer those with nothing to write, claim the rest (committed)."""
    retry = runtime.settings.retry
    with runtime.session() as session:
        # one statement for ops and connections; the connection rows are held here because
        # the identity map keeps an object only while someone does, and building a
        # connector looks its row up again
        loaded = session.execute(_ops_with_connections(), {"keys": list(keys)}).all()
        if not loaded:
            raise OpGone(", ".join(keys))
        order = {key: i for i, key in enumerate(keys)}
        ready: list[tuple[OpRecord, Op]] = []
        for row, connection in sorted(loaded, key=lambda pair: order[pair[0].key]):
            if (state := ledger.settled(row)) is not None:
                pushed.settle(row.key, PushState(state))
                continue
            answer = _ready(session, row, connection, pushed)
            if answer is not None:
                ready.append((row, answer))
        if not ready:
            return []
        if not turn(len(ready)):
            for row, _ in ready:
                pushed.come_back(row.key, PushState.QUEUED, 0.0)
            return []
        # built before the claims commit, while the connection rows read above are loaded;
        # measured and logged: latency, errors by class (workers.instrumented)
        connectors = {
            name: Instrumented(runtime.connectors.get(session, name, org_id=org), name)
            for name, org in {(row.connection, row.org_id) for row, _ in ready}
        }
        claims = ledger.claim_many(session, [row for row, _ in ready], retry.lease_s, time.time())
        writes: list[_Write] = []
        for row, op in ready:
            claimed = claims[row.key]
            if isinstance(claimed, OpState):
                pushed.settle(row.key, PushState(claimed))
            elif isinstance(claimed, ledger.Busy):
                wait = min(claimed.wait_s, retry.busy_backoff_ms / 1000)
                pushed.come_back(row.key, PushState.BUSY, max(wait, 0.2))
            else:
                writes.append(_Write(claimed, op, connectors[row.connection]))
    return writes


@cache
def _ops_with_connections() -> Select[OpRecord, Connection]:
    """A batch's ops with their connections, built once (meetsync/db/session.py)."""
    return (
        select(OpRecord, Connection)
        .outerjoin(Connection, Connection.name == OpRecord.connection)
        .where(OpRecord.key.in_(bindparam("keys", expanding=True)))
    )


def _ready(
    session: Session, row: OpRecord, connection: Connection | None, pushed: Pushed
) -> Op | None:
    """The op to write, linked records filled in; or None, with why it has nothing to write."""
    if connection is not None and connection.status == ConnectionStatus.PAUSED:
        if not ledger.leased(row, time.time()):
            reason = f"connection paused: {connection.status_reason}"
            ledger.mark_resting(row, OpState.PAUSED, reason)
        pushed.settle(row.key, PushState.PAUSED, row.meeting_id)
        return None
    # a recap that links other ops' records waits until those have settled
    ready = enrich.linked(session, ledger.to_op(row))
    if ready is None:
        # not sent again: the push that settles its last dependency wakes it
        pushed.settle(row.key, PushState.WAITING)
    return ready


def _write_all(runtime: Runtime, writes: list[_Write], pushed: Pushed) -> None:
    """Write the claimed ops in order (several in one request where the connector can),
    then record every outcome in one transaction."""
    landed: list[tuple[_Write, Receipt]] = []
    ends: dict[str, dict[str, Any]] = {}  # key → the ledger values its attempt ends with
    doubts = _Doubts(runtime, writes)
    untouched: list[_Write] = []  # never sent: unclaimed, as they were
    reached = 0  # writes[:reached] have their outcomes
    sending: list[_Write] = []
    paused: AuthExpired | None = None
    try:
        for group in _groups(writes):
            sending = group
            stop = False
            for write, outcome in zip(group, _outcomes(group, doubts), strict=True):
                op, key = write.op, write.claim.op.key
                if outcome is None:
                    untouched.append(write)
                elif isinstance(outcome, Receipt):
                    landed.append((write, outcome))
                elif isinstance(outcome, RateLimited):
                    # left in doubt on purpose: a multi-part write (a long Slack recap) may
                    # have landed in part before the 429, so the next attempt runs find()
                    ends[key] = ledger.released(str(outcome))
                    pushed.come_back(key, PushState.THROTTLED, outcome.retry_after)
                    stop = True
                elif isinstance(outcome, AuthExpired):
                    # the credential stopped working: the connection and what is left pause
                    paused, stop = outcome, True
                    untouched.append(write)
                elif isinstance(outcome, Permanent):
                    ends[key] = ledger.resting(OpState.FAILED, str(outcome))
                    pushed.settle(key, PushState.FAILED, op.meeting_id)
                else:
                    ends[key] = ledger.released(str(outcome))
                    pushed.transient = str(outcome)
            reached += len(group)
            sending = []
            if stop:
                break
        untouched += writes[reached:]
        if paused is not None:
            for rest in untouched:
                ends[rest.claim.op.key] = ledger.resting(OpState.PAUSED, str(paused))
                pushed.settle(rest.claim.op.key, PushState.PAUSED, rest.op.meeting_id)
            untouched = []
            _pause_connection(runtime, writes[0].op.connection, str(paused))
    except BaseException:
        # interrupted mid-write (a shutdown, a time limit): what was being sent stays in
        # doubt, free for the next push; what was not reached goes back as it was
        with suppress(Exception):
            done = {w.claim.op.key for w, _ in landed}
            for write in sending:
                if write.claim.op.key not in done:
                    ends[write.claim.op.key] = ledger.released("push interrupted")
            flying = {w.claim.op.key for w in sending}
            unsent = [w for w in writes[reached:] if w.claim.op.key not in flying]
            _end(runtime, writes, landed, ends, untouched + unsent, pushed, interrupted=True)
        raise
    _end(runtime, writes, landed, ends, untouched, pushed)


def _groups(writes: list[_Write]) -> Iterator[list[_Write]]:
    """The writes in order, those a connector writes together (`apply_many`) as one group."""
    group: list[_Write] = []
    for write in writes:
        if group and (write.connector is not group[0].connector or not write.connector.writes_many):
            yield group
            group = []
        group.append(write)
    if group:
        yield group


def _outcomes(group: list[_Write], doubts: _Doubts) -> list[Receipt | ConnectorError | None]:
    """Each write's outcome: its receipt, its error, or None when it was never sent."""
    if len(group) == 1:
        try:
            return [_write(group[0], doubts)]
        except ConnectorError as exc:
            return [exc]
    outcomes: list[Receipt | ConnectorError | None] = [None] * len(group)
    sent: list[tuple[int, Op, Receipt | None]] = []
    for i, write in enumerate(group):
        try:
            prior = _prior(write, doubts)
        except (RateLimited, AuthExpired) as exc:
            outcomes[i] = exc  # the lookup was refused: it and those after it wait
            break
        except ConnectorError as exc:
            outcomes[i] = exc
            continue
        if _landed_as_is(write, prior):
            outcomes[i] = prior
        else:
            sent.append((i, write.op, prior))
    if sent:
        answered = group[0].connector.apply_many([(op, prior) for _, op, prior in sent])
        for (i, _, _), outcome in zip(sent, answered, strict=True):
            outcomes[i] = outcome
    return outcomes


class _Doubts:
    """The batch's ops in doubt, looked up at their provider together when the first one's
    turn comes (one Asana scan for all, not one each); what was found is remembered in the
    ledger at once, so a crash before the writes loses no lookup."""

    def __init__(self, runtime: Runtime, writes: list[_Write]) -> None:
        self.runtime = runtime
        self.waiting = [w for w in writes if w.claim.in_doubt and w.claim.prior is None]
        self.found: dict[str, Receipt | None] = {}

    def find(self, write: _Write) -> Receipt | None:
        key = write.claim.op.key
        if key not in self.found:
            ahead = [
                w
                for w in self.waiting
                if w.claim.op.key not in self.found and w.connector is write.connector
            ]
            since = [w.claim.doubt_since for w in ahead if w.claim.doubt_since is not None]
            with written_after(min(since) if len(since) == len(ahead) else None):
                found = write.connector.find_many([w.op for w in ahead])
            self.found.update({w.claim.op.key: found.get(w.claim.op.key) for w in ahead})
            if any(self.found[w.claim.op.key] for w in ahead):
                with self.runtime.session() as session:
                    for w in ahead:
                        if (receipt := self.found[w.claim.op.key]) is not None:
                            values = ledger.found(receipt)
                            ledger.while_held(session, w.claim.op.key, w.claim.attempt, values)
        return self.found[key]


def _write(write: _Write, doubts: _Doubts) -> Receipt:
    """One op's write: looked up first when an earlier attempt may have landed."""
    prior = _prior(write, doubts)
    if _landed_as_is(write, prior):
        assert prior is not None
        return prior  # the write in doubt landed with this very payload: done, not again
    return write.connector.apply(write.op, prior)


def _prior(write: _Write, doubts: _Doubts) -> Receipt | None:
    """What the op wrote before: its receipt, or what a lookup finds when in doubt."""
    if write.claim.in_doubt and write.claim.prior is None:
        return doubts.find(write)
    return write.claim.prior


def _landed_as_is(write: _Write, prior: Receipt | None) -> bool:
    """The write in doubt landed with this very payload: done, not again."""
    return (
        prior is not None
        and write.claim.in_doubt
        and prior.extra.get("payload_hash") == write.op.payload_hash
    )


def _end(
    runtime: Runtime,
    writes: list[_Write],
    landed: list[tuple[_Write, Receipt]],
    ends: dict[str, dict[str, Any]],
    untouched: list[_Write],
    pushed: Pushed,
    *,
    interrupted: bool = False,
) -> None:
    """Record the batch: receipts of what landed, how the others' attempts ended, and the
    ops never sent unclaimed; retried a while if the database is away.

    Giving up leaves the ops in doubt until their leases run out (then find() settles
    them), so a database that comes back within `record_retry_s` spares them that wait.
    """
    retry = runtime.settings.retry
    deadline = time.monotonic() + min(retry.record_retry_s, retry.lease_s / 2)
    pause = RECORD_PAUSE_S
    while True:
        try:
            with runtime.session() as session:
                recorded = ledger.record_landed(
                    session,
                    [(w.claim.op.key, w.claim.attempt, r, w.op.payload_hash) for w, r in landed],
                )
                for write in writes:
                    values = ends.get(write.claim.op.key)
                    if values is not None:
                        ledger.while_held(session, write.claim.op.key, write.claim.attempt, values)
                for write in untouched:
                    ledger.unclaim(session, write.claim)
            break
        except (OperationalError, InterfaceError, DisconnectionError) as exc:
            if interrupted or time.monotonic() + pause > deadline:
                raise
            log.warning(
                "recording receipts failed (%d op(s)), retrying: %s",
                len(landed),
                type(exc).__name__,
            )
            time.sleep(pause)
            pause = min(pause * 2, RECORD_PAUSE_MAX_S)
    for write, _ in landed:
        key = write.claim.op.key
        if key in recorded:
            pushed.settle(key, PushState.DONE, write.op.meeting_id)
        else:
            # our lease ran out and another push took over; it finds this write
            log.warning(
                "op %s: attempt %d lost its claim before recording", key, write.claim.attempt
            )
            pushed.settle(key, PushState.SUPERSEDED)
    for write in untouched:
        if write.claim.op.key not in pushed.states:
            pushed.come_back(write.claim.op.key, PushState.QUEUED, 0.0)


def _pause_connection(runtime: Runtime, name: str, reason: str) -> None:
    with runtime.session() as session:
        paused = session.get(Connection, name)
        if paused is not None:
            paused.status, paused.status_reason = ConnectionStatus.PAUSED, reason


def woken(
    runtime: Runtime, settled: Iterable[str], meeting_id: str, backfill: bool | None = None
) -> list[Planned]:
    """The ops that waited for `settled` ops (a recap for its records) and can be pushed
    now, on the lane of the push that settled them (looked up when not known)."""
    with runtime.session() as session:
        waiters = enrich.ready_waiters(session, meeting_id, set(settled))
        if not waiters:
            return []
        if backfill is None:
            meeting = session.get(Meeting, meeting_id)
            backfill = meeting is not None and meeting.source == "backfill"
        return [planned(w, backfill) for w in waiters]


def give_up(runtime: Runtime, keys: Iterable[str], reason: str) -> dict[str, str]:
    """Retries are exhausted: park the unsettled ops as dead letters with the last reason;
    the ops parked, with their meetings."""
    parked: dict[str, str] = {}
    with runtime.session() as session:
        for row in session.scalars(ledger.ops_by_key(), {"keys": list(keys)}):
            if ledger.settled(row) is None and not ledger.leased(row, time.time()):
                ledger.mark_resting(row, OpState.DEAD, reason)
                parked[row.key] = row.meeting_id
    return parked


def record_error(runtime: Runtime, keys: Iterable[str], reason: str) -> None:
    """The last error of the ops still to write (a retry follows)."""
    with runtime.session() as session:
        session.execute(
            update(OpRecord)
            .where(OpRecord.key.in_(list(keys)), OpRecord.state != OpState.DONE)
            .values(last_error=reason)
            .execution_options(synchronize_session=False)
        )
