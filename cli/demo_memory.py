"""The demo's org-memory scene: a transcript that misspells an owner's name, extracted
without memory and then with one alias taught (`meetsync memory add person …`)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from admin import memory
from extraction.extract import extract_insights
from extraction.memory import recall
from extraction.memory.render import render_memory
from meetsync.db.models import Org
from meetsync.db.session import session_scope
from meetsync.models import MeetingOutput
from meetsync.settings import Settings

HEARD, MEANT = "Psalm Pattel", "Sam Patel"  # how transcription heard Sam, who it was


def show_memory(console: Console, settings: Settings, sample: MeetingOutput) -> None:
    """Extract `sample` with Sam's name misheard, before and after memory learns the alias."""
    console.rule("[bold]org memory: a misspelt owner[/]")
    misheard = sample.model_copy(
        update={
            # the same meeting (its own items are not earlier commitments), heard worse
            "transcript": [
                u.model_copy(update={"speaker": HEARD if u.speaker == MEANT else u.speaker})
                for u in sample.transcript
            ],
        }
    )
    with session_scope(settings.database_url) as session:
        org = session.get(Org, sample.org_id)
        profile = dict(org.profile) if org else {}
    before = extract_insights(misheard, settings=settings.llm, org_profile=profile)
    with session_scope(settings.database_url) as session:
        email = next(a.email for a in sample.attendees if a.name == MEANT)
        taught = {"name": MEANT, "email": email, "aliases": [HEARD]}
        memory.add_entry(session, sample.org_id, "person", taught)
        found = recall(session, sample.org_id, misheard, settings.llm.memory_budget_tokens)
    console.print(f'$ meetsync memory add person "{MEANT}" --alias "{HEARD}" --set email={email}')
    console.print(render_memory(found.memory), markup=False, highlight=False)
    console.print(f"recalled for this meeting: {found.tokens} prompt tokens")
    after = extract_insights(misheard, settings=settings.llm, org_profile=found.profile(profile))
    table = Table("action item (with memory)", "owner without memory", "owner with memory")
    same = 0
    fixed = {i.evidence: i for i in after.insights.action_items}
    for item in before.insights.action_items:
        now = fixed.get(item.evidence)
        if now is None or (now.owner, now.owner_email, now.title) == (
            item.owner,
            item.owner_email,
            item.title,
        ):
            same += 1
            continue
        table.add_row(
            now.title, _who(item.owner, item.owner_email), _who(now.owner, now.owner_email)
        )
    console.print(table)
    console.print(f"{same} other action items unchanged")


def _who(name: str | None, email: str | None) -> str:
    return f"{name} <{email}>" if email else f"{name} (no email: no assignee)"
