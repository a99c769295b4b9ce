"""The <org_memory> block: the entries recalled for one meeting, one line each, in a
stable order (so the same recall renders the same bytes and the extraction cache hits).

    <org_memory>
    people:
    - Jon Smith <jon@acme.io> (Account Executive, Sales); also heard as: Jon | John Smyth
    terms:
    - Kubernetes (product); also heard as: Cooper Netties
    preferences:
    - Tasks for legal review go to the Legal project.
    open commitments:
    - [c-1a2b3c4d] Send the proposal; owner: Jon Smith; account: Globex; due: 2026-11-20
    </org_memory>
"""

from __future__ import annotations

from typing import Any

SECTIONS = (
    ("people", "people"),
    ("terms", "terms"),
    ("preferences", "preferences"),
    ("commitments", "open commitments"),
)


def line_of(section: str, entry: dict[str, Any]) -> str:
    """One entry's line in the block."""
    if section == "people":
        email = f" <{entry['email']}>" if entry.get("email") else ""
        about = ", ".join(str(entry[k]) for k in ("role", "team") if entry.get(k))
        text = f"- {entry['name']}{email}" + (f" ({about})" if about else "")
    elif section == "terms":
        category = entry.get("category")
        text = f"- {entry['name']}" + (f" ({category})" if category and category != "other" else "")
        if entry.get("meaning"):
            text += f": {entry['meaning']}"
    elif section == "preferences":
        return f"- {entry['text']}"
    else:
        parts = [f"- [{entry['id']}] {entry['title']}"]
        parts += [f"{k}: {entry[k]}" for k in ("owner", "account", "due") if entry.get(k)]
        return "; ".join(parts)
    aliases = entry.get("aliases") or []
    return text + (f"; also heard as: {' | '.join(aliases)}" if aliases else "")


def render_memory(memory: dict[str, Any] | None, clean: Any = str) -> str:
    """The block, or '' when nothing was recalled; `clean` keeps each line data."""
    if not memory or not any(memory.get(key) for key, _ in SECTIONS):
        return ""
    lines = ["<org_memory>"]
    for key, title in SECTIONS:
        if memory.get(key):
            lines.append(f"{title}:")
            lines += [clean(" ".join(line_of(key, e).split())) for e in memory[key]]
    lines.append("</org_memory>")
    return "\n".join(lines)
