"""`meetsync worker --lane`: the live and backfill lanes split the declared queues between
them, each queue in exactly one, so a deployment per lane leaves nothing unserved."""

from __future__ import annotations

from connectors.registry import available
from meetsync.settings import get_settings
from workers.actors import declare
from workers.broker import make_broker
from workers.lanes import Lane, lane_queues
from workers.runtime import Runtime


def test_live_and_backfill_lanes_cover_every_declared_queue_once() -> None:
    # given the pipeline declared on a broker
    broker = make_broker("stub")
    declare(broker, Runtime(get_settings()))
    declared = {q for q in broker.get_declared_queues() if not q.endswith((".DQ", ".XQ"))}

    # when the two lanes' queues are listed
    connectors = sorted(available())
    live = lane_queues(Lane.LIVE, connectors)
    backfill = lane_queues(Lane.BACKFILL, connectors)

    # expect every queue served by exactly one lane, backfill taking only backfill queues
    assert sorted(live + backfill) == sorted(declared)
    assert not set(live) & set(backfill)
    assert all(q.endswith((".backfill", ".backfill.returns")) for q in backfill)
    assert {"extract.backfill", "plan.backfill", "extract.backfill.returns"} <= set(backfill)
    assert {"plan", "extract.returns"} <= set(live)
