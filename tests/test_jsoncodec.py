"""JSON columns go through orjson, and store whatever the standard library stored."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import pytest
from sqlalchemy import text

from meetsync import jsoncodec
from meetsync.db.migrate import upgrade
from meetsync.db.models import Org
from meetsync.db.session import engine_for, session_scope


class Colour(StrEnum):
    RED = "red"


@pytest.mark.parametrize(
    "value",
    [
        {"title": "Envoyer le devis à Zoë", "due": None, "tags": ["a", "b"], "n": 1.5},
        {"state": Colour.RED, 3: "int keys become strings", "nested": {"t": True}},
        {"huge": 2**70, "negative": -(2**70)},  # beyond 64 bits: orjson refuses, json takes it
        [1, "two", {"three": [3.0]}],
    ],
)
def test_a_value_reads_back_as_the_standard_library_reads_what_it_wrote(value: Any) -> None:
    # when
    stored = jsoncodec.dumps(value)

    # expect: the same value as json's own round trip, from text and from bytes alike
    expected = json.loads(json.dumps(value))
    assert json.loads(stored) == expected
    assert jsoncodec.loads(stored) == expected
    assert jsoncodec.loads(memoryview(stored.encode())) == expected


def test_text_is_kept_as_unicode_not_escaped() -> None:
    assert jsoncodec.dumps({"name": "Zoë"}) == '{"name":"Zoë"}'


def test_what_neither_can_write_is_refused() -> None:
    with pytest.raises(TypeError):
        jsoncodec.dumps({"not json": object()})


def test_postgresql_json_columns_are_written_and_read_through_it(postgres_url: str) -> None:
    # given: a profile orjson writes, and one only json can (an integer beyond 64 bits)
    upgrade(postgres_url)
    profiles = {"org-utf8": {"greeting": "Grüße", "ratio": 0.1}, "org-big": {"big": 2**70}}
    with session_scope(postgres_url) as session:
        session.add_all(Org(id=org, name=org, profile=p) for org, p in profiles.items())

    # when
    with session_scope(postgres_url) as session:
        read = {org: session.get(Org, org).profile for org in profiles}  # type: ignore[union-attr]
    with engine_for(postgres_url).connect() as connection:
        raw = connection.execute(text("SELECT profile::text FROM orgs WHERE id = 'org-utf8'"))
        stored = raw.scalar_one()

    # expect: both back as written; the column holds orjson's compact UTF-8 text
    assert read == profiles
    assert stored == '{"greeting":"Grüße","ratio":0.1}'
