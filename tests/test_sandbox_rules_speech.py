"""The rules model on real speech, through the real SDK and the emulator.

Each case is a short meeting in the shape recorded meetings have; what must (and must not)
become an action item, and who owns it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from extraction.extract import extract_insights
from meetsync.models import Attendee, MeetingOutput, Utterance
from meetsync.settings import LLMSettings
from sandbox.rules.disfluency import tidy
from sandbox.server import Sandbox


def _meeting(*lines: tuple[str, str], attendees: list[Attendee] | None = None) -> MeetingOutput:
    start = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # a Tuesday
    return MeetingOutput(
        org_id="acme", meeting_id="speech", title="Weekly", start=start,
        end=start.replace(hour=11), attendees=attendees or [],
        transcript=[Utterance(speaker=s, start=float(k), text=t) for k, (s, t) in enumerate(lines)],
    )  # fmt: skip


def _items(sandbox: Sandbox, meeting: MeetingOutput) -> list[tuple[str, str | None]]:
    result = extract_insights(meeting, settings=LLMSettings(base_url=sandbox.urls["openai"]))
    return [(i.title, i.owner) for i in result.insights.action_items]


@pytest.mark.parametrize(
    ("spoken", "read"),
    [
        pytest.param("Um I will put the the notes in the folder.",
                     "I will put the notes in the folder.", id="fillers-and-repeats"),
        pytest.param("Try I'll try to ship it.", "I'll try to ship it.", id="verb-restart"),
        pytest.param("So I'm gonna, I'll write the spec.", "So I'll write the spec.",
                     id="modal-restart"),
        pytest.param("I'll se- send the deck.", "I'll send the deck.", id="cut-off-word"),
        pytest.param("I'll let you know by Friday.", "I'll let you know by Friday.",
                     id="you-know-kept-when-meant"),
        pytest.param("Ben, um, you'll do it.", "Ben, you'll do it.", id="vocative-comma-kept"),
        pytest.param("I'll {disfmarker} I'll send the [inaudible] deck (laughs).",
                     "I'll send the deck.", id="transcriber-markup"),
    ],
)  # fmt: skip
def test_tidy_reads_speech_as_meant(spoken: str, read: str) -> None:
    assert tidy(spoken) == read


def test_a_chair_hands_out_work_by_role_and_second_person(sandbox: Sandbox) -> None:
    meeting = _meeting(
        ("Chair", "Okay, um, I will open the the planning meeting."),
        ("Chair", "Support, uh, you're gonna be doing the the holiday rota."),
        ("Support", "Yep, fine."),
        ("Chair", "And for you, the the pricing page copy."),
        ("Marketing", "Okay, sure."),
        ("Chair", "I'd like to receive the the churn numbers by Friday, Finance."),
        ("Finance", "Sure."),
        ("Chair", "We'll come to the the budget later."),
    )
    items = _items(sandbox, meeting)
    owners = {owner: title for title, owner in items}
    assert set(owners) == {"Support", "Marketing", "Finance"}
    assert "holiday rota" in owners["Support"].lower()
    assert "pricing page copy" in owners["Marketing"].lower()
    assert "churn numbers" in owners["Finance"].lower()


def test_things_done_in_the_room_and_decisions_are_not_tasks(sandbox: Sandbox) -> None:
    meeting = _meeting(
        ("A", "Could you, uh, scroll down a bit?"),
        ("B", "Sure. There."),
        ("A", "Okay so I'll give it a three."),
        ("B", "I'll give it a four out of five."),
        ("A", "So we're gonna go with the the blue theme. Decided."),
        ("B", "We'll we'll talk about the logo next time."),
    )
    assert _items(sandbox, meeting) == []


def test_a_group_task_goes_to_whoever_takes_it_up(sandbox: Sandbox) -> None:
    meeting = _meeting(
        ("A", "Oh and we need to renew the the SSL certificate before it expires."),
        ("B", "Hm."),
        ("C", "I can take that."),
        ("A", "Great, thanks."),
    )
    assert _items(sandbox, meeting) == [("Renew the SSL certificate", "C")]


def test_a_request_nobody_takes_up_is_left_out(sandbox: Sandbox) -> None:
    meeting = _meeting(
        ("Dana Reyes", "Could you send us the the audit log export?"),
        ("Hank Scorpio", "Let me check what we're allowed to share."),
        ("Dana Reyes", "Okay."),
        attendees=[
            Attendee(name="Dana Reyes", email="dana@acme.io", internal=True),
            Attendee(name="Hank Scorpio", email="hank@globex.com"),
        ],
    )
    assert _items(sandbox, meeting) == []


def test_hedged_promises_score_lower_than_firm_ones(sandbox: Sandbox) -> None:
    meeting = _meeting(
        ("A", "I'll send the contract to legal by Friday."),
        ("B", "I'll maybe look into the the invoice template, I think."),
    )
    result = extract_insights(meeting, settings=LLMSettings(base_url=sandbox.urls["openai"]))
    scores = {i.owner: i.confidence for i in result.insights.action_items}
    assert scores["A"] > scores["B"] >= 0.5
