"""The default world every emulator is seeded with: one selling company and its customers.

The bundled demo meetings are between these people, so the demo's matching by email,
owner lookups and channel posts all land on real records.
"""

from __future__ import annotations

import copy
from typing import Any

INTERNAL: list[dict[str, Any]] = [
    {"name": "Dana Reyes", "email": "dana@acme.io", "title": "Account Executive"},
    {"name": "Sam Patel", "email": "sam@acme.io", "title": "Solutions Engineer"},
    {"name": "Lee Chen", "email": "lee@acme.io", "title": "Engineering Manager"},
    {"name": "Priya Nair", "email": "priya@acme.io", "title": "Customer Success Manager"},
    {"name": "Marco Rossi", "email": "marco@acme.io", "title": "Software Engineer"},
]

ACCOUNTS: list[dict[str, Any]] = [
    {
        "name": "Globex",
        "domain": "globex.com",
        "contacts": [
            {"name": "Hank Scorpio", "email": "hank@globex.com", "title": "VP Operations"},
            {"name": "Mindy Park", "email": "mindy@globex.com", "title": "Data Lead"},
        ],
        "opportunities": [
            {
                "name": "Globex - Analytics Platform",
                "stage": "Qualification",
                "amount": None,
                "close_date": "2027-03-31",
            },
        ],
    },
    {
        "name": "Initech",
        "domain": "initech.com",
        "contacts": [
            {"name": "Bill Lumbergh", "email": "bill@initech.com", "title": "Director of IT"},
            {"name": "Peter Gibbons", "email": "peter@initech.com", "title": "Engineer"},
        ],
        "opportunities": [
            {
                "name": "Initech - Renewal 2027",
                "stage": "Negotiation/Review",
                "amount": 120000.0,
                "close_date": "2026-12-31",
            },
            {
                "name": "Initech - Expansion",
                "stage": "Prospecting",
                "amount": None,
                "close_date": "2027-06-30",
            },
        ],
    },
    {
        "name": "Umbrella Health",
        "domain": "umbrella-health.com",
        "contacts": [
            {"name": "Alice Wong", "email": "alice@umbrella-health.com", "title": "CTO"},
        ],
        "opportunities": [],
    },
]

ASANA_PROJECTS: list[dict[str, Any]] = [
    {"name": "Customer Follow-ups", "sections": ["Inbox", "This week", "Done"]},
    {"name": "Sprint 42", "sections": ["Backlog", "In progress", "Review"]},
]

SLACK_CHANNELS: list[dict[str, Any]] = [
    {"name": "sales-meetings", "bot_member": True, "archived": False},
    {"name": "eng-standup", "bot_member": True, "archived": False},
    {"name": "customer-escalations", "bot_member": True, "archived": False},
    {"name": "general", "bot_member": False, "archived": False},
    {"name": "old-deals", "bot_member": True, "archived": True},
]


def default_world() -> dict[str, Any]:
    """A fresh copy of the default world; emulators may mutate it freely."""
    return copy.deepcopy(
        {
            "company": {"name": "Acme Analytics", "domain": "acme.io"},
            "internal": INTERNAL,
            "accounts": ACCOUNTS,
            "asana_projects": ASANA_PROJECTS,
            "slack_channels": SLACK_CHANNELS,
        }
    )
