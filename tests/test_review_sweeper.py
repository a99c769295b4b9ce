"""Review work left undone because the broker lost its message is found and sent again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from dramatiq import Message
from dramatiq.brokers.stub import StubBroker

from meetsync.bootstrap import ensure_org
from meetsync.db.migrate import upgrade
from meetsync.db.models import Meeting, ReviewMessage, ReviewRequest
from meetsync.db.session import session_scope
from meetsync.settings import Settings
from workers.actors import declare
from workers.broker import make_broker
from workers.review_sweeper import sweep_reviews
from workers.runtime import Runtime

LONG_AGO = datetime.now(UTC) - timedelta(hours=1)


def meeting(session: object, name: str) -> str:
    row = Meeting(
        org_id="acme",
        external_id=name,
        title=name,
        payload={},
        transcript_hash="0" * 64,
        status="planned",
        updated_at=LONG_AGO,
    )
    session.add(row)  # type: ignore[attr-defined]
    session.flush()  # type: ignore[attr-defined]
    return row.id


def test_overdue_unasked_and_unposted_reviews_are_enqueued_once(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/sweep.db")
    upgrade(settings.database_url)
    with session_scope(settings.database_url) as session:
        ensure_org(session, "acme", "Acme")
        overdue, unasked, unposted, fine = (
            meeting(session, n) for n in ("overdue", "unasked", "unposted", "fine")
        )
        naive_past = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=5)
        session.add_all(
            [
                ReviewRequest(
                    org_id="acme",
                    meeting_id=overdue,
                    op_key="k1",
                    payload_hash="h",
                    proposal={"announced": True},
                    expires_at=naive_past,
                    created_at=LONG_AGO,
                ),
                ReviewRequest(
                    org_id="acme",
                    meeting_id=unasked,
                    op_key="k2",
                    payload_hash="h",
                    proposal={"announced": False},
                    created_at=LONG_AGO,
                ),
                ReviewMessage(
                    org_id="acme",
                    meeting_id=unposted,
                    connection="acme-slack",
                    channel="D0SBX0001",
                    created_at=LONG_AGO,
                ),
                ReviewRequest(
                    org_id="acme",
                    meeting_id=fine,
                    op_key="k3",
                    payload_hash="h",
                    proposal={"announced": True},
                    expires_at=naive_past + timedelta(days=1),
                    created_at=LONG_AGO,
                ),
            ]
        )
    broker = make_broker("stub")
    assert isinstance(broker, StubBroker)
    pipeline = declare(broker, Runtime(settings))
    assert pipeline.review is not None
    swept = sweep_reviews(pipeline.runtime, pipeline.review, stuck_after_s=60)
    assert (swept.expire, swept.prepare, swept.refresh) == (1, 1, 1)
    queued = [Message.decode(raw) for raw in list(broker.queues["review"].queue)]
    sent = {(m.actor_name, m.args[0]) for m in queued}
    assert sent == {
        ("review_expire", overdue),
        ("review_prepare", unasked),
        ("review_refresh", unposted),
    }
    # a second sweeper (or the next sweep) finds them claimed
    again = sweep_reviews(pipeline.runtime, pipeline.review, stuck_after_s=60)
    assert (again.expire, again.prepare, again.refresh) == (0, 0, 0)
