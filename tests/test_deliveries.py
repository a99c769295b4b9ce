"""Deliveries arriving together are written together, and each still gets its own answer:
a burst mixing new meetings, repeats of one event, revisions of one meeting and an unknown
org comes out exactly as if each had been sent alone."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from intake.app import create_app
from intake.client import WEBHOOK_PATH, signed_headers
from meetsync.bootstrap import ensure_org
from meetsync.db.migrate import upgrade
from meetsync.db.models import Meeting, WebhookEvent
from meetsync.db.session import session_scope
from meetsync.settings import Settings
from tests.test_webhook import SECRET, meeting_body
from workers.actors import declare
from workers.broker import make_broker
from workers.runtime import Runtime


def test_a_burst_of_deliveries_each_gets_the_answer_it_would_get_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/burst.db"
    settings = Settings(database_url=url, webhook_secret=SECRET)
    upgrade(url)
    with session_scope(url) as session:
        ensure_org(session, "acme", "Acme")
    pipeline = declare(make_broker("stub"), Runtime(settings))
    app = create_app(settings, pipeline)
    deliveries: list[tuple[dict[str, Any], str]] = [
        (meeting_body(meeting_id=f"m-{i}"), f"event-{i}") for i in range(30)
    ]
    deliveries += [(meeting_body(meeting_id="m-0"), "event-0")] * 3  # the same event again
    deliveries += [(meeting_body(org_id="nobody", meeting_id="x"), "event-x")]
    deliveries += [(meeting_body(meeting_id="m-1", title="Renamed"), "event-1b")]  # revision

    async def send_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            posts = []
            for body, event in deliveries:
                raw = json.dumps(body).encode()
                posts.append(
                    client.post(
                        WEBHOOK_PATH, content=raw, headers=signed_headers(SECRET, raw, event)
                    )
                )
            return list(await asyncio.gather(*posts))

    answers = asyncio.run(send_all())

    by_event: dict[str, list[httpx.Response]] = {}
    for (_, event), answer in zip(deliveries, answers, strict=True):
        by_event.setdefault(event, []).append(answer)
    assert all(
        a.status_code == 202
        for e, a in zip(deliveries, answers, strict=True)
        if e[1] != "event-x" and e[1] != "event-0"
    )
    zero = by_event["event-0"]
    assert [a.status_code for a in zero] == [202] * 4
    assert len({a.json()["meeting_id"] for a in zero}) == 1
    assert sum(a.headers.get("X-Meetsync-Replay") == "true" for a in zero) == 3
    assert by_event["event-x"][0].status_code == 404
    assert (
        by_event["event-1b"][0].json()["meeting_id"] == by_event["event-1"][0].json()["meeting_id"]
    )
    with session_scope(url) as session:
        assert session.scalar(select(func.count()).select_from(Meeting)) == 30
        assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 31
        renamed = session.scalars(select(Meeting).where(Meeting.external_id == "m-1")).one()
        assert renamed.title == "Renamed" and renamed.revision == 2
    # one extraction per accepted delivery that changed something: 30 new, 1 revision
    assert pipeline.broker.queues["extract"].qsize() == 31  # type: ignore[attr-defined]
