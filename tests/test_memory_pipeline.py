"""Org memory through the whole pipeline: a later meeting that says "I sent it" closes the
task an earlier meeting created, instead of creating a new one.

Runs on the embedded defaults (SQLite with FTS5, the in-process broker, the sandbox).
"""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import select

from intake.client import post_meeting
from meetsync.db.models import MemoryEntry
from meetsync.db.session import session_scope
from meetsync.models import MeetingOutput
from sandbox.server import Sandbox
from tests.admin_cli import admin_auth
from tests.test_end_to_end import MEETING, embedded_stack, held_by_meetsync, wait_final

FOLLOW_UP = MeetingOutput.model_validate(
    {
        **MEETING.model_dump(mode="json", exclude={"transcript", "summary"}),
        "meeting_id": "e2e-globex-2",
        "title": "Globex check-in",
        "start": "2026-11-24T15:00:00Z",
        "end": "2026-11-24T15:20:00Z",
        "transcript": [
            {"speaker": "Hank Scorpio", "start": 1, "text": "Did the questionnaire go out?"},
            {
                "speaker": "Dana Reyes",
                "start": 6,
                "text": "Yes, I sent the security questionnaire to you on Thursday.",
            },
            {"speaker": "Hank Scorpio", "start": 14, "text": "Great, our team is reviewing it."},
        ],
    }
)

REVISED = MEETING.model_copy(
    update={
        "transcript": [
            *MEETING.transcript,
            MEETING.transcript[0].model_copy(update={"start": 99, "text": "Talk soon."}),
        ]
    }
)


def test_a_later_meeting_closes_the_task_an_earlier_one_created(
    clean_sandbox: Sandbox, tmp_path: Path
) -> None:
    with embedded_stack(clean_sandbox, f"sqlite:///{tmp_path}/memory.db") as (settings, url):
        secret = settings.webhook_secret.get_secret_value()
        headers = admin_auth(settings)
        with httpx.Client(base_url=url, trust_env=False, timeout=10, headers=headers) as http:
            # given Dana in acme's memory, taught through the admin API
            taught = http.post(
                "/v1/admin/orgs/acme/memory",
                json={"kind": "person", "data": {"name": "Dana Reyes", "email": "dana@acme.io"}},
            )
            assert taught.status_code == 201, taught.text
            # when the discovery call creates its tasks
            first = post_meeting(http, secret, MEETING).json()["meeting_id"]
            assert wait_final(http, first)["status"] == "done"
            tasks = {t["gid"]: t for t in held_by_meetsync(clean_sandbox)["asana"]}
            questionnaire = next(
                t for t in tasks.values() if "security questionnaire" in t["name"].lower()
            )
            assert questionnaire["completed"] is False
            # and the check-in a week later says it went out
            second = post_meeting(http, secret, FOLLOW_UP).json()["meeting_id"]
            assert wait_final(http, second)["status"] == "done"
            wait_final(http, first)
            # and a new revision of the discovery call, planned again, does not reopen it
            again = post_meeting(http, secret, REVISED)
            assert again.status_code == 202 and again.json()["meeting_id"] == first
            assert wait_final(http, first)["status"] == "done"
        after = {t["gid"]: t for t in held_by_meetsync(clean_sandbox)["asana"]}
    # expect the earlier task completed, no new task, the other task untouched
    assert after.keys() == tasks.keys()
    assert after[questionnaire["gid"]]["completed"] is True
    others = [t for gid, t in after.items() if gid != questionnaire["gid"]]
    assert others and all(t["completed"] is False for t in others)
    with session_scope(settings.database_url) as session:
        commitments = session.scalars(
            select(MemoryEntry).where(MemoryEntry.kind == "commitment").order_by(MemoryEntry.name)
        ).all()
        states = {c.name: c.status for c in commitments}
        dana = session.scalars(select(MemoryEntry).where(MemoryEntry.kind == "person")).one()
        assert all(c.person_id == dana.id for c in commitments if "questionnaire" in c.name)
    assert sorted(states.values()) == ["closed", "open"], states
    assert next(s for name, s in states.items() if "questionnaire" in name.lower()) == "closed"
