"""Standard Webhooks signatures, the legacy scheme behind a setting, and no replay ever."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from intake.app import create_app
from intake.client import WEBHOOK_PATH, signed_headers
from intake.signatures import SignatureError, sign_standard, verify_standard
from meetsync.bootstrap import ensure_org
from meetsync.db.migrate import upgrade
from meetsync.db.models import Meeting
from meetsync.db.session import session_scope
from meetsync.settings import Settings
from tests.test_webhook import meeting_body
from workers.actors import Pipeline, declare
from workers.broker import make_broker
from workers.runtime import Runtime

# the Standard Webhooks specification's own example
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

SECRET = "whsec_" + "bWVldHN5bmMtdGVzdC1zZWNyZXQtMzItYnl0ZXMhIQ=="


def test_signing_matches_the_specifications_vector() -> None:
    assert sign_standard(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE
    verify_standard(
        [SPEC_SECRET], SPEC_ID, str(SPEC_TIMESTAMP), SPEC_SIGNATURE, SPEC_BODY, now=SPEC_TIMESTAMP
    )


@pytest.mark.parametrize(
    ("secret", "msg_id", "body"),
    [
        pytest.param(SECRET, "msg_1", b"{}", id="padded-secret"),
        pytest.param("whsec_c2VjcmV0LXdpdGhvdXQtcGFk", "evt-2", b'{"a":"\xc3\xa9"}', id="unpadded"),
        pytest.param(SPEC_SECRET, "x" * 200, b"[1,2,3]", id="long-id"),
    ],
)
def test_signing_agrees_with_the_reference_library(secret: str, msg_id: str, body: bytes) -> None:
    now = int(time.time())
    reference = Webhook(secret)
    expected = reference.sign(msg_id, datetime.fromtimestamp(now, tz=UTC), body.decode())
    assert sign_standard(secret, msg_id, now, body) == expected
    # and what we sign, the reference verifies
    reference.verify(
        body,
        {
            "webhook-id": msg_id,
            "webhook-timestamp": str(now),
            "webhook-signature": sign_standard(secret, msg_id, now, body),
        },
    )


def test_several_space_separated_signatures_rotate_secrets() -> None:
    old, new = sign_standard("whsec_b2xk", SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY), SPEC_SIGNATURE
    for secrets in (["whsec_b2xk"], [SPEC_SECRET]):
        verify_standard(
            secrets, SPEC_ID, str(SPEC_TIMESTAMP), f"{old} {new}", SPEC_BODY, now=SPEC_TIMESTAMP
        )


@pytest.mark.parametrize(
    ("msg_id", "timestamp", "signature", "reason"),
    [
        pytest.param(SPEC_ID, str(SPEC_TIMESTAMP), None, "missing_signature", id="no-signature"),
        pytest.param(None, str(SPEC_TIMESTAMP), SPEC_SIGNATURE, "missing_id", id="no-id"),
        pytest.param("msg_other", str(SPEC_TIMESTAMP), SPEC_SIGNATURE, "bad_signature", id="id"),
        pytest.param(SPEC_ID, str(SPEC_TIMESTAMP + 1), SPEC_SIGNATURE, "bad_signature", id="ts"),
        pytest.param(SPEC_ID, "１２３", SPEC_SIGNATURE, "bad_timestamp", id="unicode-digits"),
        pytest.param(SPEC_ID, str(SPEC_TIMESTAMP), "v1,%%%notbase64", "bad_signature", id="junk"),
        pytest.param(SPEC_ID, str(SPEC_TIMESTAMP), "v1g0hM9SsE", "bad_signature", id="no-comma"),
    ],
)
def test_standard_refusals_carry_a_reason_code(
    msg_id: str | None, timestamp: str, signature: str | None, reason: str
) -> None:
    with pytest.raises(SignatureError) as caught:
        verify_standard([SPEC_SECRET], msg_id, timestamp, signature, SPEC_BODY, now=SPEC_TIMESTAMP)
    assert caught.value.reason == reason


# -- through the HTTP API ---------------------------------------------------------------------
def api_for(url: str, scheme: str) -> tuple[TestClient, Pipeline]:
    settings = Settings(database_url=url, webhook_secret=SECRET, webhook_scheme=scheme)  # type: ignore[arg-type]
    upgrade(url)
    with session_scope(url) as session:
        ensure_org(session, "acme", "Acme")
    pipeline = declare(make_broker("stub"), Runtime(settings))
    return TestClient(create_app(settings, pipeline)), pipeline


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/replay.db"
    else:
        yield request.getfixturevalue("postgres_url")


def queued(pipeline: Pipeline) -> int:
    return int(pipeline.broker.queues["extract"].qsize())  # type: ignore[attr-defined]


def stored(url: str) -> int:
    with session_scope(url) as session:
        return int(session.scalar(select(func.count()).select_from(Meeting)) or 0)


@pytest.mark.parametrize(
    "legacy", [pytest.param(False, id="standard"), pytest.param(True, id="legacy")]
)
def test_a_captured_delivery_resent_under_a_new_id_is_refused(database: str, legacy: bool) -> None:
    client, pipeline = api_for(database, "both")
    body = json.dumps(meeting_body()).encode()
    with client:
        # given one delivery accepted
        captured = signed_headers(SECRET, body, "evt-1", legacy=legacy)
        first = client.post(WEBHOOK_PATH, content=body, headers=captured)
        assert first.status_code == 202, first.text

        # when it is resent as is, and with a new id (inside the window)
        again = client.post(WEBHOOK_PATH, content=body, headers=captured)
        id_header = "x-meetsync-event-id" if legacy else "webhook-id"
        replay = client.post(WEBHOOK_PATH, content=body, headers={**captured, id_header: "evt-2"})

    # expect the same delivery answered as before, the replay refused; one extraction, ever
    assert again.status_code == 202 and again.headers["x-meetsync-replay"] == "true"
    if legacy:
        assert replay.status_code == 401 and replay.json()["error"]["code"] == "replayed_signature"
    else:  # the id is signed: a new one breaks the signature
        assert replay.status_code == 401 and replay.json()["error"]["code"] == "bad_signature"
    assert queued(pipeline) == 1 and stored(database) == 1


def test_the_legacy_scheme_is_refused_when_the_setting_says_standard(sqlite_url: str) -> None:
    client, pipeline = api_for(sqlite_url, "standard")
    body = json.dumps(meeting_body()).encode()
    with client:
        legacy = client.post(
            WEBHOOK_PATH, content=body, headers=signed_headers(SECRET, body, legacy=True)
        )
        standard = client.post(WEBHOOK_PATH, content=body, headers=signed_headers(SECRET, body))
    assert legacy.status_code == 401 and legacy.json()["error"]["code"] == "missing_signature"
    assert standard.status_code == 202 and queued(pipeline) == 1


def test_the_standard_scheme_is_refused_when_the_setting_says_legacy(sqlite_url: str) -> None:
    client, pipeline = api_for(sqlite_url, "legacy")
    body = json.dumps(meeting_body()).encode()
    with client:
        standard = client.post(WEBHOOK_PATH, content=body, headers=signed_headers(SECRET, body))
    assert standard.status_code == 401 and queued(pipeline) == 0
