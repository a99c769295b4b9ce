"""The floors of DESIGN.md: imports point down only, and no room may import more than it uses.

top       cli ─▶ intake (the HTTP apps)
service   admin
pipeline  workers
domain    extraction · mappings · connectors
core      meetsync
aside     sandbox (the emulators; only the CLI starts them)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# which rooms each room imports (itself always): exactly, so the table can only shrink
ALLOWED: dict[str, set[str]] = {
    "cli": {"intake", "admin", "workers", "extraction", "mappings", "meetsync", "sandbox"},
    "intake": {"admin", "mappings", "meetsync"},
    "admin": {"workers", "extraction", "mappings", "connectors", "meetsync"},
    "workers": {"extraction", "mappings", "connectors", "meetsync"},
    "mappings": {"extraction", "connectors", "meetsync"},
    "extraction": {"meetsync"},
    "connectors": {"meetsync"},
    "meetsync": set(),
    "sandbox": {"meetsync"},
}
FLOORS = ["cli", "intake", "admin", "workers", "mappings", "extraction", "connectors", "meetsync"]


def imported_rooms(path: Path) -> set[str]:
    """Every room a module names in an import, type-checking-only and local ones included."""
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & set(ALLOWED)


def modules(room: str) -> list[Path]:
    return [p for p in (ROOT / room).rglob("*.py") if "migrations" not in p.parts]


def used_by(room: str) -> set[str]:
    return set().union(*(imported_rooms(p) for p in modules(room))) - {room}


@pytest.mark.parametrize("room", [pytest.param(r, id=r) for r in ALLOWED])
def test_a_room_imports_only_the_rooms_below_it(room: str) -> None:
    upward = {
        str(path.relative_to(ROOT)): sorted(imported_rooms(path) - ALLOWED[room] - {room})
        for path in modules(room)
    }
    assert {k: v for k, v in upward.items() if v} == {}


@pytest.mark.parametrize("room", [pytest.param(r, id=r) for r in ALLOWED])
def test_no_room_is_allowed_more_than_it_uses(room: str) -> None:
    assert ALLOWED[room] - used_by(room) == set()


def test_the_table_points_down() -> None:
    """A room on a floor may only be allowed rooms on the floors below it (the drawing)."""
    for room, allowed in ALLOWED.items():
        if room == "sandbox":
            continue
        below = set(FLOORS[FLOORS.index(room) + 1 :]) | ({"sandbox"} if room == "cli" else set())
        # the domain rooms sit side by side: mappings may use extraction's schemas and
        # connectors' contract, never the other way round
        assert allowed <= below, room
    assert "mappings" not in ALLOWED["extraction"] | ALLOWED["connectors"]
