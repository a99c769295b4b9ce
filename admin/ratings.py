"""Ratings: 👍/👎 on a recap and on its action items, by the people who read them.

Stored with the meeting, the item (its own op's key), the model and the prompt version that
produced it: raw material for experiments and org memory. A person's second rating of the
same thing replaces the first.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from admin.review import Decided, Reviewer
from meetsync.db.models import OpRecord, Rating
from meetsync.db.session import session_scope
from meetsync.settings import Settings


def rate(
    settings: Settings,
    meeting_id: str,
    item_key: str,
    who: Reviewer,
    value: Literal["up", "down"],
    *,
    org_id: str,
    model: str | None = None,
    prompt_version: str | None = None,
) -> Decided:
    """👍/👎 on a recap (`item_key` "") or an item; a person's second rating replaces it."""
    for _ in range(2):  # two first ratings at once: the loser updates the winner's row
        try:
            with session_scope(settings.database_url) as session:
                row = session.scalars(
                    select(Rating).where(
                        Rating.meeting_id == meeting_id,
                        Rating.item_key == item_key,
                        Rating.rated_by == who.label,
                    )
                ).first()
                if row is None:
                    session.add(
                        Rating(
                            org_id=org_id,
                            meeting_id=meeting_id,
                            item_key=item_key,
                            rated_by=who.label,
                            value=value,
                            model=model,
                            prompt_version=prompt_version,
                        )
                    )
                else:
                    row.value = value
            return Decided(True, "Thanks for the rating.", meeting_id)
        except IntegrityError:
            continue
    return Decided(False, "The rating was not stored; try again.", meeting_id)


def rate_recap(settings: Settings, value: str, who: Reviewer) -> Decided:
    """A 👍/👎 from a recap's controls (`<recap op key>|<item index or "">|up|down`)."""
    op_key, _, rest = value.partition("|")
    index, _, verdict = rest.partition("|")
    if verdict not in ("up", "down"):
        return Decided(False, "That rating is not one meetsync knows; nothing was stored.")
    with session_scope(settings.database_url) as session:
        row = session.get(OpRecord, op_key)
        if row is None:
            return Decided(False, "That recap is unknown here; nothing was stored.")
        meeting_id, org_id, item_key = row.meeting_id, row.org_id, ""
        task = "crm_fields"
        if index.isdigit():
            items = row.fields.get("action_items") or []
            title = items[int(index)].get("title") if int(index) < len(items) else None
            linked = [e for e in row.target.get("after") or [] if e.get("title") == title]
            item_key = str(linked[0]["key"]) if linked else f"item:{index}"
            task = "action_items"
    return rate(
        settings,
        meeting_id,
        item_key,
        who,
        "up" if verdict == "up" else "down",
        org_id=org_id,
        model=settings.llm.models.get(task),
        prompt_version=settings.llm.prompt_versions.get(task),
    )
