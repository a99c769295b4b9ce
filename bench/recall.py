"""What recall costs as an org's memory grows: `python -m bench.recall [--people 0 500 4000]`.

For each size, a fresh PostgreSQL database holds an org with that many people (each with an
alias, as a CRM contact sync leaves them) and `--commitments` open commitments; one meeting
of `--turns` turns that names a few of them (one misspelled) is recalled `--rounds` times.
Prints one JSON line per size: recall's CPU and wall time per meeting (median), what it
recalled, and its CPU over the smallest size's (how it grows with the org).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from typing import Any

from admin import orgs
from bench.chaos import fresh_database
from extraction.memory import recall
from meetsync.db.migrate import upgrade
from meetsync.db.models import MemoryEntry
from meetsync.db.session import session_scope
from meetsync.models import MeetingOutput

# fmt: off
FIRST = [
    "Ana", "Ben", "Chloe", "Dev", "Elif", "Farid", "Gita", "Hugo", "Ines", "Jonas", "Kira",
    "Liam", "Maya", "Nico", "Omar", "Pia", "Quinn", "Ravi", "Sara", "Tomas", "Uma",
    "Viktor", "Wen", "Xavi", "Yara", "Zoe", "Amir", "Bianca", "Carlos", "Dana",
]
LAST = [
    "Okafor", "Lindqvist", "Moreau", "Tanaka", "Novak", "Silva", "Haddad", "Kowalski",
    "Ferreira", "Nguyen", "Schmidt", "Rossi", "Jensen", "Murphy", "Costa", "Ivanova",
    "Larsen", "Petrov", "Ortega", "Bauer", "Sato", "Kaur", "Walsh", "Mendes", "Varga",
]
ENDINGS = ["", "son", "berg", "ez", "ini", "ova", "ström", "wood", "er", "ano", "ski", "well"]
WORDS = [
    "the", "proposal", "pricing", "contract", "renewal", "budget", "send", "review", "next",
    "week", "timeline", "security", "rollout", "migration", "onboarding", "legal",
    "approval", "invoice", "forecast", "pilot",
]
# fmt: on


def person(k: int) -> tuple[str, str]:
    """The k-th person's name and email: distinct names (up to 30 × 25 × 12), first names
    shared as in life."""
    first, rest = FIRST[k % len(FIRST)], k // len(FIRST)
    last = LAST[rest % len(LAST)] + ENDINGS[(rest // len(LAST)) % len(ENDINGS)]
    return f"{first} {last}", f"p{k}@acme.example"


def seed(url: str, people: int, commitments: int) -> None:
    with session_scope(url) as session:
        orgs.create_org(session, "acme", "Acme")
    with session_scope(url) as session:
        for k in range(people):
            name, email = person(k)
            alias = f"{name.split()[0][0]}. {name.split()[1]}"
            data = {"name": name, "email": email, "aliases": [alias], "role": "Engineer"}
            session.add(
                MemoryEntry(
                    org_id="acme", kind="person", name=name, aliases=[alias], email=email,
                    data=data, search_text=f"{name} {alias}",
                )
            )  # fmt: skip
        for k in range(commitments):
            title = f"Send the {WORDS[k % len(WORDS)]} {WORDS[(k * 7) % len(WORDS)]} note {k}"
            session.add(
                MemoryEntry(
                    org_id="acme", kind="commitment", name=title, status="open", account=None,
                    data={"title": title, "since": "2026-01-01T00:00:00+00:00"},
                    search_text=title,
                )
            )  # fmt: skip


def meeting(people: int, turns: int) -> MeetingOutput:
    rnd = random.Random(7)
    named = [person(k)[0] for k in (1, 2, 3)] if people > 3 else []
    lines = []
    for i in range(turns):
        text = " ".join(rnd.choice(WORDS) for _ in range(18))
        if named and i % 50 == 3:
            text += f" {named[i % len(named)]} will own it."
        if named and i == 10:
            text += f" {named[0][:-2]}{named[0][-1]} agreed."  # a misspelling: fuzzy
        lines.append({"speaker": "Dana Reyes", "text": text})
    return MeetingOutput.model_validate(
        {
            "org_id": "acme", "meeting_id": "m-1", "title": "Weekly pipeline review",
            "start": "2026-11-17T15:00:00Z", "end": "2026-11-17T16:00:00Z",
            "attendees": [{"name": "Dana Reyes", "email": "dana@acme.example"}],
            "transcript": lines,
        }
    )  # fmt: skip


def measure(people: int, commitments: int, turns: int, rounds: int) -> dict[str, Any]:
    with fresh_database(f"meetsync_bench_recall_{os.getpid()}", keep=False) as url:
        upgrade(url)
        seed(url, people, commitments)
        said = meeting(people, turns)
        cpu, wall = [], []
        found: dict[str, Any] = {}
        for k in range(rounds + 2):
            began, began_cpu = time.perf_counter(), time.process_time()
            with session_scope(url) as session:
                found = recall(session, "acme", said).memory
            if k >= 2:  # the first two warm the caches and the connection pool
                cpu.append((time.process_time() - began_cpu) * 1000)
                wall.append((time.perf_counter() - began) * 1000)
    return {
        "people": people,
        "open_commitments": commitments,
        "turns": turns,
        "recall_cpu_ms": round(statistics.median(cpu), 1),
        "recall_wall_ms": round(statistics.median(wall), 1),
        "people_recalled": len(found.get("people", [])),
        "commitments_recalled": len(found.get("commitments", [])),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, nargs="+", default=[0, 500, 4000])
    parser.add_argument("--commitments", type=int, default=2000)
    parser.add_argument("--turns", type=int, default=400, help="a 40-minute meeting")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    first: float | None = None
    for people in args.people:
        figures = measure(people, args.commitments, args.turns, args.rounds)
        first = first or figures["recall_cpu_ms"]
        figures["cpu_vs_smallest"] = round(figures["recall_cpu_ms"] / first, 2)
        print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
