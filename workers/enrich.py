"""Links for a recap: the receipts of the ops it waits for, filled in at push time.

A destination with `after: [names]` (a Slack recap) is planned with `target["after"]`:
one entry per op of those destinations for the same meeting, `{key, destination,
connector, title, owner_email}` (title and owner only for per-item ops). Before such an op
is pushed, `linked` checks the ledger: while any of those ops is still planned or in
flight the push answers `waiting` and is not sent again; the push that settles the last of
them (done, failed, dead or paused) wakes it (`ready_waiters`), and it is pushed with
each action item's `url` set to its own task's link and the per-meeting records (a
Salesforce Task, an Opportunity) added to `fields["links"]`.

The recap's CRM section says what happened to the per-meeting records it waits for
(`fields["crm_status"]`): `written` when every one of them is done, `failed` or `partial`
(naming the destinations that failed or died), `proposed` otherwise (awaiting review, paused, or
never planned). A recap never reports a CRM change that the CRM refused; an action item
none of whose tasks was written is flagged (`status`: failed, or proposed while paused).

The links are not part of the op's payload hash, on purpose: the hash is the plan's (what
the meeting said), so a re-run that changes nothing posts nothing, and a link that cannot
change without its op's key changing (a new item is a new key, and so a new plan of the
recap) never makes a recap update forever. A dependency that failed or is paused is
simply not linked.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from connectors.base import Op, Receipt
from meetsync.db.models import OpRecord
from workers.ledger import ops_by_key, prior_receipt

SETTLED = {"done", "failed", "dead", "paused", "awaiting_review", "skipped"}
FAILED = {"failed", "dead"}


def waits_for(op: Op) -> list[str]:
    """Keys of the ops whose receipts this op links to."""
    return [str(entry["key"]) for entry in op.target.get("after") or []]


def pending(op: Op, states: Mapping[str, str]) -> list[str]:
    """The ops this one still waits for: planned or in flight (an unknown key is not waited on)."""
    return [key for key in waits_for(op) if key in states and states[key] not in SETTLED]


def crm_status(op: Op, states: Mapping[str, str]) -> dict[str, Any]:
    """What became of the per-meeting records the op waits for: written, failed or proposed."""
    records = [e for e in op.target.get("after") or [] if e.get("title") is None]
    failed = [str(e.get("destination")) for e in records if states.get(str(e["key"])) in FAILED]
    if failed:
        partly = any(states.get(str(e["key"])) == "done" for e in records)
        return {"state": "partial" if partly else "failed", "failed": failed}
    if records and all(states.get(str(e["key"])) == "done" for e in records):
        return {"state": "written"}
    return {"state": "proposed"}


def with_links(
    op: Op, receipts: Mapping[str, Receipt], states: Mapping[str, str] | None = None
) -> Op:
    """The op with its items' `url`, its `links` and its CRM status; payload hash unchanged.

    Without `states`, an op with a receipt counts as done and any other as not written.
    """
    fields = copy.deepcopy(op.fields)
    if fields.get("crm_changes"):
        known = states if states is not None else dict.fromkeys(receipts, "done")
        fields["crm_status"] = crm_status(op, known)
    items = [i for i in fields.get("action_items") or [] if isinstance(i, dict)]
    links: list[dict[str, Any]] = list(fields.get("links") or [])
    for entry in op.target.get("after") or []:
        receipt = receipts.get(str(entry["key"]))
        if receipt is None or not receipt.url:
            continue
        if entry.get("title") is None:
            links.append({"label": _label(entry, receipt), "url": receipt.url})
            continue
        line = next((i for i in items if not i.get("url") and _same_item(i, entry)), None)
        if line is not None:  # first destination in `after` wins the line's one link
            line["url"] = receipt.url
    if links:
        fields["links"] = links
    if states is not None:
        _mark_unwritten(op, items, states)
    return op.model_copy(update={"fields": fields})


def _mark_unwritten(op: Op, items: list[dict[str, Any]], states: Mapping[str, str]) -> None:
    """Flag item lines none of whose tasks was written: `failed`, or `proposed` while paused."""
    for line in items:
        outcomes = {
            states.get(str(e["key"]))
            for e in op.target.get("after") or []
            if e.get("title") is not None and _same_item(line, e)
        }
        if not outcomes or "done" in outcomes:
            continue
        line["status"] = "failed" if outcomes & FAILED else "proposed"


def linked(session: Session, op: Op) -> Op | None:
    """The op ready to push with its links, or None while what it waits for is in flight."""
    keys = waits_for(op)
    if not keys:
        return op
    rows = session.scalars(ops_by_key(), {"keys": keys}).all()
    if pending(op, {row.key: row.state for row in rows}):
        return None
    receipts = {row.key: prior_receipt(row) for row in rows if row.state == "done"}
    states = {row.key: row.state for row in rows}
    return with_links(op, {k: r for k, r in receipts.items() if r is not None}, states)


def _same_item(line: Mapping[str, Any], entry: Mapping[str, Any]) -> bool:
    if _norm(line.get("title")) != _norm(entry.get("title")):
        return False
    mine, theirs = _norm(line.get("owner_email")), _norm(entry.get("owner_email"))
    return not (mine and theirs) or mine == theirs


def _norm(value: Any) -> str:
    return " ".join(str(value or "").split()).casefold()


def _label(entry: Mapping[str, Any], receipt: Receipt) -> str:
    provider = str(entry.get("connector") or "").capitalize()
    return " ".join(p for p in (provider, receipt.object or "record") if p)


def ready_waiters(session: Session, meeting_id: str, settled: Collection[str]) -> list[OpRecord]:
    """The ops of the meeting that wait for any of the ops `settled` and, now, for nothing else.

    Asked after an op settles: its waiters are enqueued then, instead of polling. Whichever
    comes last, the waiter's own push or this, sees every dependency settled, so a waiter
    is never left behind (and a lost wake-up is the sweeper's).
    """
    rows = session.connection().execute(_meeting_links(), {"meeting_id": meeting_id}).all()
    states = {key: state for key, state, _ in rows}
    ready: list[str] = []
    for key, state, target in rows:
        keys = [str(e["key"]) for e in (target or {}).get("after") or []]
        if state in SETTLED or not any(k in settled for k in keys):
            continue
        if not [k for k in keys if k in states and states[k] not in SETTLED]:
            ready.append(key)
    if not ready:
        return []
    return list(session.scalars(ops_by_key(), {"keys": ready}))


@cache
def _meeting_links() -> Select[str, str, dict[str, Any] | None]:
    """Every op of a meeting (`meeting_id`) with its state and links, built once."""
    return select(OpRecord.key, OpRecord.state, OpRecord.target).where(
        OpRecord.meeting_id == bindparam("meeting_id")
    )
