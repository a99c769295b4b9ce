"""The rooms of DESIGN.md: no module imports upward, no cycles between rooms."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ["meetsync", "admin", "intake", "workers", "extraction", "mappings", "connectors",
         "sandbox"]  # fmt: skip

# which rooms each room may import (itself always); meetsync/cli is the top floor
ALLOWED: dict[str, set[str]] = {
    "meetsync": set(),
    "connectors": {"meetsync"},
    "extraction": {"meetsync"},
    "mappings": {"meetsync", "extraction", "connectors"},
    "sandbox": {"meetsync"},
    "workers": {"meetsync", "extraction", "mappings", "connectors"},
    "admin": {"meetsync", "extraction", "mappings", "connectors", "workers"},
    "intake": {"meetsync", "workers", "admin", "extraction", "mappings", "connectors"},
}
TOP_FLOOR = ROOT / "meetsync" / "cli"


def imported_rooms(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & set(ROOMS)


def modules(room: str) -> list[Path]:
    return [p for p in (ROOT / room).rglob("*.py")
            if TOP_FLOOR not in p.parents and "migrations" not in p.parts]  # fmt: skip


@pytest.mark.parametrize("room", [pytest.param(r, id=r) for r in ALLOWED])
def test_a_room_imports_only_the_rooms_below_it(room: str) -> None:
    upward = {
        str(path.relative_to(ROOT)): sorted(imported_rooms(path) - ALLOWED[room] - {room})
        for path in modules(room)
    }
    assert {k: v for k, v in upward.items() if v} == {}
