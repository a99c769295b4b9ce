"""Deliveries arriving together are stored together (intake.deliveries), and each still
gets the answer it would have had alone: repeats inside a batch and across batches, a
replayed signature, a revision, an unknown org. Nothing is acknowledged that is not
stored: a batch that fails to commit answers every delivery in it with a 503."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import dramatiq
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from intake.app import create_app
from intake.client import WEBHOOK_PATH, signed_headers
from intake.deliveries import DeliveryWriter
from intake.webhook_store import Delivery, delivery_writer
from meetsync.bootstrap import ensure_org
from meetsync.db.migrate import upgrade
from meetsync.db.models import Meeting, WebhookEvent
from meetsync.db.session import session_scope, writer_session_factory
from meetsync.settings import Settings
from tests.test_webhook import SECRET, meeting_body
from workers.actors import Pipeline, declare
from workers.broker import make_broker
from workers.runtime import Runtime


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/batches.db"
    else:
        yield request.getfixturevalue("postgres_url")


@dataclass
class Held:
    """The app's writer, held before a batch until released, with the batches it stored."""

    writer: DeliveryWriter
    entered: threading.Event = field(default_factory=threading.Event)
    gate: threading.Event = field(default_factory=threading.Event)
    batches: list[list[str]] = field(default_factory=list)

    def install(self) -> None:
        prepare, store_many = self.writer.prepare, self.writer.store_many
        assert prepare is not None and store_many is not None

        def held(session: Session) -> None:
            self.entered.set()
            assert self.gate.wait(10)
            prepare(session)

        def recorded(session: Session, items: list[Delivery]) -> list[Any]:
            self.batches.append([d.event_id for d in items])
            return store_many(session, items)

        self.writer.prepare, self.writer.store_many = held, recorded


@dataclass
class Api:
    app: FastAPI
    pipeline: Pipeline
    url: str

    @property
    def writer(self) -> DeliveryWriter:
        return self.app.state.deliveries  # type: ignore[no-any-return]

    def enqueued(self) -> list[str]:
        assert self.writer.wait_idle()
        messages = list(self.pipeline.broker.queues["extract"].queue)  # type: ignore[attr-defined]
        return [dramatiq.Message.decode(m).args[0] for m in messages]

    def stored(self) -> tuple[int, int]:
        with session_scope(self.url) as session:
            meetings = session.scalar(select(func.count()).select_from(Meeting))
            events = session.scalar(select(func.count()).select_from(WebhookEvent))
        return int(meetings or 0), int(events or 0)


@pytest.fixture
def api(database: str) -> Iterator[Api]:
    settings = Settings(database_url=database, webhook_secret=SECRET)
    upgrade(database)
    with session_scope(database) as session:
        ensure_org(session, "acme", "Acme")
    pipeline = declare(make_broker("stub"), Runtime(settings))
    app = create_app(settings, pipeline)
    yield Api(app, pipeline, database)
    app.state.deliveries.close()


Send = tuple[bytes, dict[str, str]]


def delivery(event_id: str, legacy: bool = False, **overrides: Any) -> Send:
    body = json.dumps(meeting_body(**overrides)).encode()
    return body, signed_headers(SECRET, body, event_id, legacy=legacy)


async def burst(api: Api, held: Held, sends: list[Send]) -> list[httpx.Response]:
    """Send a plug delivery, hold the writer on it, queue `sends`, then let both through:
    `sends` land in one batch, in order."""
    transport = httpx.ASGITransport(app=api.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        held.entered.clear()
        held.gate.clear()
        plug = f"plug-{time.monotonic_ns()}"
        plug_body, plug_headers = delivery(plug, meeting_id=plug)
        plugged = asyncio.create_task(
            client.post(WEBHOOK_PATH, content=plug_body, headers=plug_headers)
        )
        while not held.entered.is_set():
            await asyncio.sleep(0.01)
        posts = []
        for body, headers in sends:  # one at a time into the queue: the order is the batch's
            posts.append(
                asyncio.create_task(client.post(WEBHOOK_PATH, content=body, headers=headers))
            )
            while api.writer.waiting < len(posts) and not posts[-1].done():
                await asyncio.sleep(0.005)
        held.gate.set()
        await plugged
        return list(await asyncio.gather(*posts))


def test_a_batch_answers_each_delivery_as_if_it_came_alone(api: Api) -> None:
    held = Held(api.writer)
    held.install()
    new = [delivery(f"e-{i}", meeting_id=f"m-{i}") for i in range(5)]
    legacy = delivery("l-1", legacy=True, meeting_id="m-legacy")
    captured = {**legacy[1], "x-meetsync-event-id": "l-2"}  # the same signature, a new id
    sends = [
        *new,
        new[0],  # the same delivery again, inside the batch
        legacy,
        (legacy[0], captured),
        delivery("e-1b", meeting_id="m-1", title="Renamed"),  # a revision, same batch
        delivery("e-x", org_id="nobody", meeting_id="x"),
        new[0],  # and once more
    ]

    # when they arrive together
    answers = asyncio.run(burst(api, held, sends))

    # expect one batch, and each answer as if alone
    assert held.batches[-1] == [headers_id(s) for s in sends]
    codes = [a.status_code for a in answers]
    assert codes == [202] * 5 + [202, 202, 401, 202, 404, 202]
    first = answers[0].json()
    assert answers[5].json() == first and answers[10].json() == first
    assert answers[5].headers["x-meetsync-replay"] == "true"
    assert answers[7].json()["error"]["code"] == "replayed_signature"
    assert answers[8].json()["meeting_id"] == answers[1].json()["meeting_id"]
    assert answers[9].json()["error"]["code"] == "unknown_org"
    # the plug, 5 new and the legacy one; events: the plug's, 5, l-1 and e-1b
    assert api.stored() == (7, 8)
    with session_scope(api.url) as session:
        renamed = session.scalars(select(Meeting).where(Meeting.external_id == "m-1")).one()
        assert renamed.title == "Renamed" and renamed.revision == 2
        for answer, (body, _) in zip(answers, sends, strict=True):
            if answer.status_code == 202:
                row = session.get(Meeting, answer.json()["meeting_id"])
                assert row is not None and row.external_id == json.loads(body)["meeting_id"]
    # one extraction per delivery that changed something, in the order they arrived
    accepted = [a.json()["meeting_id"] for a in answers[:5]]
    plug_id = api.enqueued()[0]
    assert api.enqueued() == [plug_id, *accepted, answers[6].json()["meeting_id"], accepted[1]]


def headers_id(send: Send) -> str:
    headers = send[1]
    return headers.get("webhook-id") or headers["x-meetsync-event-id"]


def test_repeats_across_batches_get_the_first_answer(api: Api) -> None:
    held = Held(api.writer)
    held.install()
    one, two = delivery("e-1", meeting_id="m-1"), delivery("e-2", meeting_id="m-2")
    legacy = delivery("l-1", legacy=True, meeting_id="m-legacy")
    first = asyncio.run(burst(api, held, [one, legacy]))

    # when the same deliveries come again in a later batch, beside a new one and a replay
    captured = {**legacy[1], "x-meetsync-event-id": "l-2"}
    again = asyncio.run(burst(api, held, [one, two, legacy, (legacy[0], captured)]))

    # expect the repeats answered as before (found by the claims' conflicts), the replay refused
    assert [a.status_code for a in again] == [202, 202, 202, 401]
    assert again[0].json() == first[0].json() and again[0].headers["x-meetsync-replay"] == "true"
    assert again[2].json() == first[1].json() and again[2].headers["x-meetsync-replay"] == "true"
    assert "x-meetsync-replay" not in again[1].headers
    assert api.stored() == (5, 5)  # two plugs, m-1, m-legacy, m-2
    assert len(api.enqueued()) == 5


def test_a_batch_that_fails_to_commit_answers_every_delivery_503_and_stores_none(
    api: Api,
) -> None:
    held = Held(api.writer)
    held.install()
    engine = writer_session_factory(api.url).kw["bind"]
    commits: list[int] = []

    def second_batch_fails(connection: Any) -> None:
        if threading.current_thread().name == "meetsync-delivery-writer":
            commits.append(1)
            if len(commits) == 2:
                raise RuntimeError("the disk is gone")

    sends = [delivery(f"e-{i}", meeting_id=f"m-{i}") for i in range(4)]
    sends.append(delivery("e-0b", meeting_id="m-0", title="Renamed"))  # one the slow way too
    event.listen(engine, "commit", second_batch_fails)
    try:
        # when the batch holding them fails to commit (the plug's, before it, commits)
        answers = asyncio.run(burst(api, held, sends))
    finally:
        event.remove(engine, "commit", second_batch_fails)

    # expect every one of them told to retry, none stored, none enqueued
    assert len(commits) == 2
    assert [a.status_code for a in answers] == [503] * 5
    for answer in answers:
        assert answer.json()["error"]["code"] == "not_stored"
        assert answer.headers["retry-after"] == "1"
    assert api.stored() == (1, 1) and len(api.enqueued()) == 1  # the plug

    # and when the sender retries, each stored and answered
    again = asyncio.run(send_all(api, sends))
    assert [a.status_code for a in again] == [202] * 5
    assert again[4].json()["meeting_id"] == again[0].json()["meeting_id"]
    assert api.stored() == (5, 6) and len(api.enqueued()) == 6


async def send_all(api: Api, sends: list[Send]) -> list[httpx.Response]:
    """`sends` at once (the writer not held)."""
    transport = httpx.ASGITransport(app=api.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        posts = [client.post(WEBHOOK_PATH, content=b, headers=h) for b, h in sends]
        return list(await asyncio.gather(*posts))


def test_a_full_queue_answers_503_at_once(api: Api) -> None:
    api.app.state.deliveries = delivery_writer(api.app.state, max_pending=2)
    held = Held(api.writer)
    held.install()
    sends = [delivery(f"e-{i}", meeting_id=f"m-{i}") for i in range(5)]

    # when five arrive while the writer is busy and only two may wait
    answers = asyncio.run(burst(api, held, sends))

    # expect two stored, three told to come back
    assert [a.status_code for a in answers] == [202, 202, 503, 503, 503]
    assert answers[2].json()["error"]["code"] == "overloaded"
    assert answers[2].headers["retry-after"] == "1"
    assert api.stored() == (3, 3)  # the plug and two
