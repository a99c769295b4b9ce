"""Webhook signatures: who may deliver, within which window, with which secrets."""

from __future__ import annotations

import pytest

from intake.signatures import SignatureError, sign, verify

BODY = b'{"org_id":"acme"}'
NOW = 1_800_000_000


def test_a_body_signed_with_the_current_secret_is_accepted() -> None:
    verify(["s1"], str(NOW), sign("s1", NOW, BODY), BODY, now=NOW)


def test_the_previous_secret_still_works_during_rotation() -> None:
    verify(["new", "old"], str(NOW), sign("old", NOW, BODY), BODY, now=NOW)


def test_a_sender_may_offer_two_signatures() -> None:
    header = f"{sign('other', NOW, BODY)}, {sign('s1', NOW, BODY)}"
    verify(["s1"], str(NOW), header, BODY, now=NOW)


@pytest.mark.parametrize(
    ("timestamp", "signature", "body", "now", "reason"),
    [
        pytest.param(str(NOW), None, BODY, NOW, "missing_signature", id="no-signature"),
        pytest.param(None, sign("s1", NOW, BODY), BODY, NOW, "missing_timestamp", id="no-ts"),
        pytest.param("yesterday", sign("s1", NOW, BODY), BODY, NOW, "bad_timestamp", id="bad-ts"),
        pytest.param(
            str(NOW), sign("s1", NOW, BODY), BODY, NOW + 301, "expired_timestamp", id="too-old"
        ),
        pytest.param(
            str(NOW),
            sign("s1", NOW, BODY),
            BODY,
            NOW - 301,
            "expired_timestamp",
            id="from-the-future",
        ),
        pytest.param(
            str(NOW), sign("wrong", NOW, BODY), BODY, NOW, "bad_signature", id="wrong-secret"
        ),
        pytest.param(
            str(NOW), sign("s1", NOW, BODY), BODY + b" ", NOW, "bad_signature", id="body-changed"
        ),
        pytest.param(
            str(NOW + 1), sign("s1", NOW, BODY), BODY, NOW, "bad_signature", id="timestamp-changed"
        ),
    ],
)
def test_refusals_carry_a_reason_code(
    timestamp: str | None, signature: str | None, body: bytes, now: int, reason: str
) -> None:
    with pytest.raises(SignatureError) as caught:
        verify(["s1"], timestamp, signature, body, now=now)
    assert caught.value.reason == reason
