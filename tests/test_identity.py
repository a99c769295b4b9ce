"""Item identity: which re-extracted action item continues which earlier op."""

from __future__ import annotations

import pytest

from mappings.identity import Identity, match
from meetsync.db.models import OpRecord

EVIDENCE = "I'll send you the security questionnaire by Friday."


def earlier(
    key: str,
    title: str,
    owner: str = "dana@acme.io",
    evidence: str = EVIDENCE,
    destination: str = "customer-followups",
) -> OpRecord:
    ident = Identity(destination, title, owner, evidence)
    return OpRecord(key=key, item=ident.as_json(), destination=destination)


@pytest.mark.parametrize(
    ("new", "matched"),
    [
        pytest.param(
            Identity(
                "customer-followups",
                "Send Hank the security questionnaire!",
                "dana@acme.io",
                EVIDENCE,
            ),
            True,
            id="punctuation",
        ),
        pytest.param(
            Identity(
                "customer-followups",
                "Get the completed security questionnaire over to Hank",
                "dana@acme.io",
                "I'll get the completed security questionnaire over to you by Friday.",
            ),
            True,
            id="reworded",
        ),
        pytest.param(
            Identity(
                "customer-followups", "Security questionnaire for Globex", "dana@acme.io", EVIDENCE
            ),
            True,
            id="loose-title-same-quote",
        ),
        pytest.param(
            Identity(
                "customer-followups",
                "Send Hank the security questionnaire",
                "sam@acme.io",
                EVIDENCE,
            ),
            False,
            id="other-owner",
        ),
        pytest.param(
            Identity(
                "sprint-tasks", "Send Hank the security questionnaire", "dana@acme.io", EVIDENCE
            ),
            False,
            id="other-destination",
        ),
        pytest.param(
            Identity(
                "customer-followups",
                "Book the technical deep dive",
                "dana@acme.io",
                "Next step is a technical deep dive.",
            ),
            False,
            id="other-item",
        ),
    ],
)
def test_a_new_item_continues_an_earlier_op_only_when_it_is_the_same_item(
    new: Identity, matched: bool
) -> None:
    # given an op written for "Send Hank the security questionnaire"
    old = earlier("old-key", "Send Hank the security questionnaire")

    # when a re-extraction plans a new item under a new key
    renames = match({"new-key": new}, [old])

    # expect the new item to take the old key only when it is the same item
    assert renames == ({"new-key": "old-key"} if matched else {})


def test_each_earlier_op_is_continued_by_at_most_one_new_item_the_closest() -> None:
    # given two earlier ops and two re-worded items, each closer to one of them
    ops = [
        earlier("k-sow", "Send the SOW to Hank", evidence="I'll send the SOW today."),
        earlier("k-sec", "Send Hank the security questionnaire"),
    ]
    new = {
        "n-sec": Identity(
            "customer-followups",
            "Send the security questionnaire to Hank",
            "dana@acme.io",
            EVIDENCE,
        ),
        "n-sow": Identity(
            "customer-followups", "Send Hank the SOW", "dana@acme.io", "I'll send the SOW today."
        ),
    }

    # when they are matched
    renames = match(new, ops)

    # expect one to one, by closeness
    assert renames == {"n-sec": "k-sec", "n-sow": "k-sow"}


def test_an_item_still_planned_under_its_own_key_is_never_taken_over() -> None:
    # given an earlier op the new plan still has, and a similar new item
    old = earlier("same-key", "Send Hank the security questionnaire")
    new = {
        "same-key": Identity(
            "customer-followups", "Send Hank the security questionnaire", "dana@acme.io", EVIDENCE
        ),
        "other": Identity(
            "customer-followups",
            "Send Hank the security questionnaire now",
            "dana@acme.io",
            EVIDENCE,
        ),
    }

    # when matched, expect no rename: the exact key keeps its op
    assert match(new, [old]) == {}
