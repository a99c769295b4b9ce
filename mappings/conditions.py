"""`when:` conditions: whether a destination fires for a meeting, and for which items."""

from __future__ import annotations

import re

from extraction.schemas import ActionItem, Insights
from meetsync.models import MeetingOutput

from .context import owner_is_internal
from .spec import When


def meeting_passes(when: When, meeting: MeetingOutput, insights: Insights) -> bool:
    """True when every meeting-level condition holds."""
    if when.external_attendees is not None:
        has_external = any(not a.internal for a in meeting.attendees)
        if has_external is not when.external_attendees:
            return False
    if when.attendee_domains is not None and not _has_domain(meeting, when.attendee_domains):
        return False
    if when.title_matches is not None and not re.search(when.title_matches, meeting.title, re.I):
        return False
    if when.title_excludes is not None and re.search(when.title_excludes, meeting.title, re.I):
        return False
    if when.has_crm:
        crm = insights.crm
        if crm is None or any(getattr(crm, fact) is None for fact in when.has_crm):
            return False
    return True


def _has_domain(meeting: MeetingOutput, domains: list[str]) -> bool:
    for person in meeting.attendees:
        domain = (person.email or "").rsplit("@", 1)[-1].lower()
        if domain and any(domain == d or domain.endswith("." + d) for d in domains):
            return True
    return False


def items_passing(when: When, meeting: MeetingOutput, items: list[ActionItem]) -> list[ActionItem]:
    """The action items that meet the item-level conditions, in their original order."""
    kept = []
    for item in items:
        if when.min_confidence is not None and item.confidence < when.min_confidence:
            continue
        if when.owner_internal is not None and (
            owner_is_internal(item, meeting) is not when.owner_internal
        ):
            continue
        kept.append(item)
    return kept
