"""Fuzzing the HTTP edge: no input, however odd, gets a 5xx.

Hypothesis sends signed bodies (random bytes, random JSON, valid payloads with one field
replaced by anything); schemathesis generates requests for every operation of the served
OpenAPI. Both are bounded by max_examples so they run in seconds.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from intake.app import create_app
from intake.client import WEBHOOK_PATH, signed_headers
from meetsync.bootstrap import ensure_org
from meetsync.db.migrate import upgrade
from meetsync.db.session import session_scope
from meetsync.settings import Settings
from tests.test_webhook import SECRET, meeting_body
from workers.actors import declare
from workers.broker import make_broker
from workers.runtime import Runtime

EXPECTED = {200, 202, 401, 404, 409, 413, 422}
FIELDS = [*meeting_body(), "occurred_at", "transcript_url", "crm", "summary", "event_id"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def make_app(tmp_path: Any) -> FastAPI:
    url = f"sqlite:///{tmp_path}/fuzz.db"
    upgrade(url)
    with session_scope(url) as session:
        ensure_org(session, "acme", "Acme")
    config = Settings(database_url=url, webhook_secret=SECRET, webhook_max_body_bytes=50_000)
    return create_app(config, declare(make_broker("stub"), Runtime(config)))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with TestClient(make_app(tmp_path_factory.mktemp("fuzz"))) as test_client:
        yield test_client


def post_signed(client: TestClient, body: bytes) -> int:
    response = client.post(WEBHOOK_PATH, content=body, headers=signed_headers(SECRET, body))
    return response.status_code


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=2_000))
def test_random_bytes_are_refused_cleanly(client: TestClient, body: bytes) -> None:
    assert post_signed(client, body) in EXPECTED


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=json_values)
def test_random_json_is_refused_cleanly(client: TestClient, body: Any) -> None:
    assert post_signed(client, json.dumps(body).encode()) in EXPECTED


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(FIELDS), value=json_values, meeting=st.text(min_size=1, max_size=8))
def test_a_valid_payload_with_one_field_replaced_never_gets_a_5xx(
    client: TestClient, field: str, value: Any, meeting: str
) -> None:
    body = meeting_body(meeting_id=meeting)
    body[field] = value
    assert post_signed(client, json.dumps(body).encode()) in EXPECTED


# schemathesis' pytest fixture loader does not support this pytest; a module-level app does
SERVED = make_app(tempfile.mkdtemp(prefix="meetsync-fuzz-"))
schema = schemathesis.openapi.from_asgi("/openapi.json", SERVED)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_generated_request_gets_a_5xx(case: Any) -> None:
    if case.path == WEBHOOK_PATH and isinstance(case.body, dict | list):
        # signed, so the body reaches validation and storage instead of stopping at 401
        body = json.dumps(case.body).encode()
        with TestClient(SERVED) as test_client:
            status = test_client.post(
                WEBHOOK_PATH, content=body, headers=signed_headers(SECRET, body)
            ).status_code
        assert status < 500
        return
    case.call_and_validate(checks=[not_a_server_error])
