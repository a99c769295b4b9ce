"""Replan stored meetings with the org's current mapping, and clear the failures it fixes.

After a mapping fix, `dlq retry` sends each failed op again as it was planned (with the
old mapping's fields), and a re-sent webhook plans the new payload but leaves an op that
had failed `failed`, its stale reason beside it. A replan renders the stored insights
through the current mapping (`workers.stages.plan`, the same code the plan stage runs),
and puts every failed, dead or paused op whose payload changed back in line with its
reason cleared. Nothing is extracted again and nothing is written to a provider here;
the pushes go through the broker as usual. `apply=False` looks and rolls back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from admin.errors import Invalid, NotFound
from mappings.planner import ledger_ops
from meetsync.db.models import Meeting
from meetsync.settings import Settings
from workers import ledger, pushing, stages
from workers.pushing import Planned
from workers.runtime import Runtime


@dataclass
class MeetingReplan:
    """What a replan did (or would do) to one meeting's ops."""

    meeting_id: str
    org_id: str
    title: str
    mapping_version: int | None = None
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0
    cleared: dict[str, str] = field(default_factory=dict)  # op key → the reason it had
    problem: str | None = None

    @property
    def to_push(self) -> int:
        return len(self.new) + len(self.changed)


@dataclass
class ReplanReport:
    applied: bool
    meetings: list[MeetingReplan]
    planned: list[Planned] = field(default_factory=list)


def choose_meetings(
    session: Session,
    *,
    refs: list[str] | None = None,
    org_id: str | None = None,
    since: date | None = None,
) -> list[str]:
    """Stored meeting ids: named (id or the notes pipeline's id), or an org's since a date."""
    if refs:
        found = []
        for ref in refs:
            row = session.get(Meeting, ref)
            if row is None:
                query = select(Meeting).where(Meeting.external_id == ref)
                if org_id:
                    query = query.where(Meeting.org_id == org_id)
                rows = session.scalars(query.limit(2)).all()
                if len(rows) > 1:
                    raise Invalid(f"meeting id {ref!r} is in several orgs: add --org")
                row = rows[0] if rows else None
            if row is None or (org_id and row.org_id != org_id):
                raise NotFound(f"no meeting {ref!r}" + (f" in org {org_id}" if org_id else ""))
            found.append(row.id)
        return found
    if not org_id or since is None:
        raise Invalid("name meeting ids, or give --org and --since")
    start = datetime(since.year, since.month, since.day, tzinfo=UTC)
    when = func.coalesce(Meeting.occurred_at, Meeting.received_at)
    ids = (
        select(Meeting.id).where(Meeting.org_id == org_id, when >= start).order_by(when, Meeting.id)
    )
    return list(session.scalars(ids))


def replan(
    session: Session, settings: Settings, meeting_ids: list[str], *, apply: bool
) -> ReplanReport:
    """Replan each meeting with its org's current mapping; roll back unless `apply`."""
    runtime = Runtime(settings)
    report = ReplanReport(applied=apply, meetings=[])
    for meeting_id in meeting_ids:
        result, planned = _replan_one(session, runtime, meeting_id)
        report.meetings.append(result)
        report.planned.extend(planned)
    if apply:
        session.commit()
    else:
        session.rollback()
        report.planned = []
    return report


def _replan_one(
    session: Session, runtime: Runtime, meeting_id: str
) -> tuple[MeetingReplan, list[Planned]]:
    meeting = session.get(Meeting, meeting_id)
    if meeting is None:
        raise NotFound(f"no meeting {meeting_id!r}")
    result = MeetingReplan(meeting.id, meeting.org_id, meeting.title)
    before = {
        row.key: (row.payload_hash, row.state, row.last_error)
        for row in ledger_ops(session, meeting_id)
    }
    try:
        planned = stages.plan(runtime, meeting_id, session=session)
    except Exception as exc:  # a mapping that cannot render this meeting: say so, go on
        result.problem = f"the current mapping cannot plan it: {exc}"
        return result, []
    if meeting.status == "failed":
        result.problem = meeting.error or "failed"
        if meeting.error == "no insights":
            result.problem += f": extract it again with `meetsync dlq retry --meeting {meeting.id}`"
        return result, []
    keys = {p.key for p in planned}
    backfill = meeting.source == "backfill"
    rows = ledger_ops(session, meeting_id)
    for row in rows:
        result.mapping_version = max(result.mapping_version or 0, row.mapping_version or 0) or None
        was = before.get(row.key)
        stale = was is not None and was[0] != row.payload_hash
        if stale and was is not None and was[1] in ledger.RESTING:
            # the plan stage puts a failed or dead op back in line itself; a paused one
            # goes too, and pauses again if its connection still is
            result.cleared[row.key] = was[2] or was[1]
            if row.state in ledger.RESTING:
                ledger.replay(row)
                row.last_error = None
            if row.key not in keys:
                planned.append(pushing.planned(row, backfill))
                keys.add(row.key)
        if row.key not in before:
            result.new.append(row.key)
        elif stale or row.key in keys:
            result.changed.append(row.key)
        else:
            result.unchanged += 1
    return result, planned


def enqueue(settings: Settings, planned: list[Planned]) -> str:
    """Send replanned ops to their push lanes; what was done, in words."""
    if not planned:
        return "nothing to push"
    if settings.broker_url == "stub":
        return (
            "the in-process broker lives in `meetsync serve`: its sweeper pushes these ops "
            f"within {settings.retry.stuck_after_s:.0f}s"
        )
    from workers.actors import declare
    from workers.broker import make_broker

    pipeline = declare(make_broker(settings.broker_url), Runtime(settings))
    try:
        pipeline.enqueue_pushes(p for p in planned if not p.deferred)
    finally:
        pipeline.broker.close()
    return f"{len(planned)} op(s) sent to their push lanes"
