"""Recall: the few memory entries one meeting needs, within a token budget.

Per meeting, from the org's memory only:

1. people who attend (by email or name), and people and terms the transcript names:
   found lexically (SQLite FTS5 / PostgreSQL full-text over names and aliases), then
   confirmed as a whole name in the text, or fuzzily (rapidfuzz, for misspellings no
   alias lists yet);
2. the open commitments of the meeting's account, of the people recalled, and those a
   turn of the transcript (with the turn before it) talks about: by its words, and, with
   `llm.memory_semantic` on, in other words too (extraction/memory/semantic.py);
3. the org's free-text preferences (a rule with `then:` is the planner's, not the prompt's).

Entries are admitted in that order of priority until the budget is spent (each entry's
rendered line counted in tokens), then sorted into a stable order: the same recall
renders the same bytes, so the extraction cache key, which holds only what was recalled,
does not change when unrelated memory does.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache, lru_cache
from itertools import chain, pairwise
from typing import Any

from rapidfuzz import fuzz, process
from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    bindparam,
    false,
    null,
    or_,
    select,
    true,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from extraction.memory import semantic
from extraction.memory.render import line_of
from extraction.memory.search import Hit, names_and_commitments, words_of
from extraction.said import Said
from meetsync.db.models import MemoryEntry
from meetsync.models import MeetingOutput
from meetsync.tokens import count_tokens

DEFAULT_BUDGET_TOKENS = 600
FUZZY_SCORE = 85.0
FUZZY_MIN_CHARS = 4
# the newest open commitments sharing a word with the meeting that are checked for being
# talked about: what an org left open long ago and never mentions again falls out of reach
COMMITMENT_CANDIDATES = 500
NAME_CANDIDATES = 500  # people and terms sharing a word with the meeting, best first
FIRST_NAME_BEARERS = 3  # a first name alone names no one when more people than this bear it
LINE_TOKENS_AT_LEAST = 12  # a commitment's line: a budget holds at most budget / this many
FUZZY_MAX_NAMES = 5000  # beyond this many names an org relies on the lexical pass alone
FUZZY_CELLS = 2_000_000  # names × word runs scored in one call (4 bytes a cell)
MEMORY_KEY = "memory"


@dataclass
class Recall:
    """What one meeting recalled, and what the budget left out."""

    memory: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    tokens: int = 0
    left_out: int = 0

    def profile(self, profile: dict[str, Any] | None) -> dict[str, Any]:
        """The org profile with this recall under `memory` (left out when nothing was)."""
        merged = {k: v for k, v in (profile or {}).items() if k != MEMORY_KEY}
        if any(self.memory.values()):
            merged[MEMORY_KEY] = self.memory
        return merged


@dataclass(frozen=True, slots=True)
class Entry:
    """What recall reads of one memory entry: a plain row, not an ORM object the session
    tracks (an org's thousands of names are read for every meeting; recall changes none,
    and reads on the session's connection: meetsync/db/session.py)."""

    id: str
    kind: str
    name: str
    aliases: list[str]
    email: str | None
    account: str | None
    status: str | None
    person_id: str | None
    data: dict[str, Any]
    whole: bool = True  # False: read as a name to match fuzzily, without its data


_ENTRY = (
    MemoryEntry.id,
    MemoryEntry.kind,
    MemoryEntry.name,
    MemoryEntry.aliases,
    MemoryEntry.email,
    MemoryEntry.account,
    MemoryEntry.status,
    MemoryEntry.person_id,
    MemoryEntry.data,
)


def _entry(row: Any, whole: bool = True) -> Entry:
    """The Entry of a row of `_ENTRY`'s columns (read without its data unless `whole`)."""
    # by position: a row's attributes by name cost more than the rest of the Entry
    return Entry(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7],
        row[8] if whole else {}, whole,
    )  # fmt: skip


def recall(
    session: Session,
    org_id: str,
    meeting: MeetingOutput,
    budget_tokens: int = DEFAULT_BUDGET_TOKENS,
    semantic: bool = False,
) -> Recall:
    """The entries of `org_id`'s memory relevant to `meeting`, within `budget_tokens`
    (`semantic`: also the open commitments its turns talk about in other words)."""
    if budget_tokens <= 0 or not _has_memory(session, org_id):
        return Recall()  # most meetings of an org without memory: one indexed lookup
    texts = [meeting.title, *(u.text for u in meeting.transcript)]
    texts += [u.speaker or "" for u in meeting.transcript]
    said = Said("\n".join(texts))
    emails = {a.email.lower() for a in meeting.attendees if a.email}
    attendee_names = {(a.name or "").casefold() for a in meeting.attendees if a.name}
    # matched on a few columns first; only what matches is loaded whole (an org's memory
    # grows with every meeting's commitments, and most lexical hits are not recalled)
    words = words_of(texts + list(attendee_names))
    candidates = names_and_commitments(
        session, org_id, words, NAME_CANDIDATES, COMMITMENT_CANDIDATES
    )
    in_full = [c for c in candidates.names if _named_in_full(c, said, attendee_names)]
    # a first name someone named in full (or attending) bears is theirs, not a namesake's
    taken = {_first(c.name) for c in in_full if c.kind == "person"}
    taken |= {_first(name) for name in attendee_names if name}
    named_ids = [c.id for c in in_full] + _by_first_name(candidates.names, said, taken)
    most = budget_tokens // LINE_TOKENS_AT_LEAST + 1  # lines a budget can hold
    talked_ids = _talked(candidates.commitments, said, most)
    entries = _entries(session, org_id, {*named_ids, *talked_ids}, emails)
    loaded = entries.loaded
    named = [loaded[i] for i in named_ids if i in loaded]
    fuzzy = _fuzzy(entries.names, said.text, set(named_ids), taken)
    named += _whole(session, fuzzy, entries.whole)
    by_email = entries.by_email
    attending = {
        r.id
        for r in [*named, *by_email]
        if r.kind == "person" and (r.email in emails or r.name.casefold() in attendee_names)
    }
    people = {r.id: r for r in [*named, *by_email] if r.kind == "person"}
    terms = {r.id: r for r in named if r.kind == "term"}
    account = meeting.crm.account_id if meeting.crm else None
    talked = [loaded[i] for i in talked_ids if i in loaded]
    commitments = _commitments(session, org_id, talked, list(people), account, most)
    if semantic:
        commitments += _paraphrased(session, org_id, meeting, {r.id for r in commitments})
    commitments = _earlier(commitments, meeting)
    preferences = entries.preferences
    ranked: list[tuple[str, Entry]] = [
        *(("people", p) for p in people.values() if p.id in attending),
        *(("people", p) for p in people.values() if p.id not in attending),
        *(("terms", t) for t in terms.values()),
        *(("commitments", c) for c in commitments),
        # a rule (`then:`) is the planner's to apply; only free text is the model's to read
        *(("preferences", p) for p in preferences if "then" not in p.data),
    ]
    owners = {r.id: r.name for r in people.values()}
    owners |= {r.email: r.name for r in people.values() if r.email}
    return _within(ranked, budget_tokens, owners)


def entry_view(section: str, row: Entry, owners: dict[str, str]) -> dict[str, Any]:
    """What the prompt (and grounding) sees of one entry."""
    data = row.data
    keys: tuple[str, ...]
    if section == "people":
        keys = ("name", "aliases", "email", "role", "team")
    elif section == "terms":
        keys = ("name", "aliases", "category", "meaning")
    elif section == "preferences":
        keys = ("text",)
    else:
        owner = owners.get(row.person_id or "") or owners.get(data.get("owner") or "")
        owner = owner or data.get("owner")
        view = {"id": commitment_ref(row.id), "title": data["title"], "owner": owner}
        view |= {"account": data.get("account"), "due": data.get("due_date")}
        return {k: v for k, v in view.items() if v}
    return {k: data[k] for k in keys if data.get(k)}


def commitment_ref(entry_id: str) -> str:
    """The short, stable id a prompt shows for a commitment."""
    return f"c-{entry_id[:8]}"


def _within(ranked: list[tuple[str, Entry]], budget: int, owners: dict[str, str]) -> Recall:
    chosen: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    spent, left_out, seen = 0, 0, set()
    for section, row in ranked:
        if row.id in seen:
            continue
        seen.add(row.id)
        view = entry_view(section, row, owners)
        cost = count_tokens(line_of(section, view)) + 1
        if spent + cost > budget:
            left_out += 1
            continue
        spent += cost
        chosen.setdefault(section, []).append((row.name.casefold() + "\0" + row.id, view))
    memory = {k: [v for _, v in sorted(chosen[k], key=lambda kv: kv[0])] for k in sorted(chosen)}
    return Recall(memory=memory, tokens=spent, left_out=left_out)


# orgs (per database) known to have had memory: an org's memory is rarely emptied, and a
# recall over an emptied memory finds nothing anyway, so only the positive answer is kept
_with_memory: set[tuple[str, str]] = set()


def _has_memory(session: Session, org_id: str) -> bool:
    key = (session.get_bind().engine.url.render_as_string(hide_password=False), org_id)
    if key in _with_memory:
        return True
    some = select(MemoryEntry.id).where(MemoryEntry.org_id == org_id).limit(1)
    if session.scalar(some) is None:
        return False
    _with_memory.add(key)
    return True


@dataclass
class _Entries:
    loaded: dict[str, Entry]  # by id, of the ids asked for
    by_email: list[Entry]  # people whose email is one of the attendees'
    names: list[Entry]  # people and terms to match fuzzily (at most FUZZY_MAX_NAMES)
    preferences: list[Entry]  # by name, then id
    whole: dict[str, Entry]  # every row read with its data, by id


def _entries(session: Session, org_id: str, ids: set[str], emails: set[str]) -> _Entries:
    """What recall reads of the org's memory after the lexical pass, in one statement."""
    query = _entries_query(bool(ids), bool(emails))
    params = {"org_id": org_id, "ids": list(ids), "emails": list(emails)}  # unused ones ignored
    found = _Entries({}, [], [], [], {})
    for read in session.connection().execute(query, params).all():
        if read.org != org_id:
            continue  # an id asked for that is another org's: never recalled here
        if not read.whole:
            if len(found.names) < FUZZY_MAX_NAMES:
                found.names.append(_entry(read, whole=False))
            continue
        if read.id in found.whole:
            continue  # wanted twice (a preference or an attendee also asked for by id)
        row = found.whole[read.id] = _entry(read)
        if row.id in ids:
            found.loaded[row.id] = row
        if emails and row.kind == "person" and row.email in emails:
            found.by_email.append(row)
        if row.kind == "preference":
            found.preferences.append(row)
    return found


@cache
def _entries_query(ids: bool, emails: bool) -> CompoundSelect[Any]:
    """`_entries`' statement, with or without `ids` and `emails` to look for, built once for
    each (meetsync/db/session.py): the names to match fuzzily, without their data
    (thousands of JSON documents a meeting in a large org, most never recalled; `_whole`
    reads the few that match), then the rows wanted whole (a row wanted twice comes twice).

    Each part asks one `kind` by equality: the (org, kind, …) index then bounds its scan to
    that kind whatever the statistics say, where an IN or an OR of kinds left it bounded by
    the org alone (statistics taken before an org had memory read its every commitment)."""
    org: BindParameter[str] = bindparam("org_id")
    no_data = type_coerce(null(), MemoryEntry.data.type)  # the union's column stays JSON

    def of_kind(kind: str) -> ColumnElement[bool]:
        return (MemoryEntry.org_id == org) & (MemoryEntry.kind == kind)

    owner = MemoryEntry.org_id.label("org")
    whole = select(*_ENTRY, true().label("whole"), owner)
    parts = [whole.where(of_kind("preference"))]  # first: PostgreSQL types `data` from it
    if ids:
        # by primary key alone, the org checked on the rows (`_entries`): with the org in
        # the statement, stale statistics chose the org's index and read its every entry
        parts.append(whole.where(MemoryEntry.id.in_(bindparam("ids", expanding=True))))
    if emails:
        attending = MemoryEntry.email.in_(bindparam("emails", expanding=True))
        parts.append(whole.where(of_kind("person"), attending))
    for kind in ("person", "term"):
        # a subquery: SQLite takes no LIMIT on a part of a UNION; `_entries` keeps
        # FUZZY_MAX_NAMES of both kinds together
        some = select(MemoryEntry.id).where(of_kind(kind)).limit(FUZZY_MAX_NAMES)
        names = select(*_ENTRY[:-1], no_data.label("data"), false().label("whole"), owner)
        parts.append(names.where(MemoryEntry.id.in_(some)))
    return union_all(*parts).order_by("name", "id")


def _whole(session: Session, rows: list[Entry], read: dict[str, Entry]) -> list[Entry]:
    """`rows`, each with its data (from `read`, or read now for those that came without)."""
    wanted = [row.id for row in rows if not row.whole and row.id not in read]
    if wanted:
        query = select(*_ENTRY).where(MemoryEntry.id.in_(wanted))
        read = read | {row.id: _entry(row) for row in session.connection().execute(query)}
    return [read.get(row.id, row) for row in rows]


def _first(name: str) -> str:
    return name.split()[0].casefold() if name.strip() else ""


def _named_in_full(c: Hit, said: Said, attendees: set[str]) -> bool:
    """Whether the meeting names a person or term by its name or an alias (or attends)."""
    if c.kind == "person" and c.name.casefold() in attendees:
        return True
    return c.kind in {"person", "term"} and any(said.says(n) for n in (c.name, *c.aliases) if n)


def _names_alone(first: str, bearers: int, taken: set[str]) -> bool:
    """Whether a first name said alone names the `bearers` people who bear it ("Priya"
    names Priya Raman): not when someone named in full bears it (`taken`: it is theirs),
    nor when more than FIRST_NAME_BEARERS do (one of forty Davids is no one the model can
    use, and forty would spend the budget that the meeting's commitments need)."""
    return first not in taken and bearers <= FIRST_NAME_BEARERS


def _by_first_name(candidates: list[Hit], said: Said, taken: set[str]) -> list[str]:
    """Ids of people the meeting names by their first name alone (`_names_alone`)."""
    bearers: dict[str, list[str]] = {}
    for c in candidates:
        if c.kind == "person" and (first := _first(c.name)):
            bearers.setdefault(first, []).append(c.id)
    return [
        i
        for first, ids in bearers.items()
        if _names_alone(first, len(ids), taken) and said.says(first)
        for i in ids
    ]


def _fuzzy(rows: list[Entry], said: str, known: set[str], taken: set[str]) -> list[Entry]:
    """People and terms the transcript names misspelled in a way no alias lists yet; by a
    first name alone, as `_names_alone` allows (`taken` grows with the full names found).

    Each distinct name is scored once against every run of as many of the meeting's words
    (first names recur across an org's people), all of one length in one `cdist` call."""
    words = re.findall(r"[^\W_]+", said)
    bearers: dict[str, list[Entry]] = {}  # casefolded name or alias → the rows it names
    firsts: dict[str, list[Entry]] = {}  # casefolded first name → the people who bear it
    exact: set[str] = set()  # every name as spelled: said so, it is that one's, no misspelling
    for row in rows:
        names = [name.casefold() for name in (row.name, *row.aliases)]
        first = _first(row.name) if row.kind == "person" else ""
        exact.update(names, [first])
        if row.id in known:
            continue
        for name in names:
            bearers.setdefault(name, []).append(row)
        if first:
            firsts.setdefault(first, []).append(row)
    matched = _fuzzy_matches([*bearers, *firsts], words, exact)
    found = {row.id: row for name in matched if name in bearers for row in bearers[name]}
    taken = taken | {_first(row.name) for row in found.values() if row.kind == "person"}
    for first in matched:
        people = firsts.get(first, [])
        if _names_alone(first, len(people), taken):
            found.update((row.id, row) for row in people)
    return [row for row in rows if row.id in found]


def _fuzzy_matches(names: list[str], words: list[str], exact: set[str]) -> set[str]:
    """Which of these (casefolded) names a run of as many of `words` spells nearly (a run
    that spells one of the `exact` names is not a misspelling of another)."""
    by_size: dict[int, list[str]] = {}
    for name in dict.fromkeys(names):
        if len(name) >= FUZZY_MIN_CHARS and len(name.split()) <= 4:
            by_size.setdefault(len(name.split()), []).append(name)
    matched: set[str] = set()
    for size, names in by_size.items():
        runs = {" ".join(words[i : i + size]).casefold() for i in range(len(words) - size + 1)}
        grams = list(runs - exact)
        if not grams:
            continue
        block = max(1, FUZZY_CELLS // len(grams))  # names per call: a bounded score matrix
        for start in range(0, len(names), block):
            part = names[start : start + block]
            scores = process.cdist(part, grams, scorer=fuzz.ratio, score_cutoff=FUZZY_SCORE)
            best = scores.max(axis=1).tolist()  # a score under the cutoff is 0
            matched.update(name for name, score in zip(part, best, strict=True) if score)
    return matched


def _commitments(
    session: Session,
    org_id: str,
    talked: list[Entry],
    people: list[str],
    account: str | None,
    most: int,
) -> list[Entry]:
    """Open commitments of the account first, then of the people, then those talked about."""
    keys = []
    if account:
        keys.append(MemoryEntry.account == account)
    if people:
        keys.append(MemoryEntry.person_id.in_(people))
    found: list[Entry] = []
    if keys:
        account_first = [MemoryEntry.account.is_distinct_from(account)] if account else []
        query = (
            select(*_ENTRY)
            .where(
                MemoryEntry.org_id == org_id,
                MemoryEntry.kind == "commitment",
                MemoryEntry.status == "open",
                or_(*keys),
            )
            .order_by(*account_first, MemoryEntry.created_at, MemoryEntry.id)
            .limit(most)  # an account open for years: no more than the budget can show
        )
        found = [_entry(row) for row in session.connection().execute(query)]
    return [*found, *talked]


def _talked(commitments: Sequence[Sequence[Any]], said: Said, most: int) -> list[str]:
    """Ids of the open commitments (rows of id, title, account) the meeting talks about:
    its account named, or most of its title's words (by their first five letters) in one
    turn with the turn before it ("did you send the proposal?" / "yes, sent it")."""
    windows: dict[str, set[int]] = {}  # stem → the windows it falls in
    for k, turn in enumerate(said.text.split("\n")):
        for stem in _stems(turn):
            windows.setdefault(stem, set()).update((k, k + 1))
    found = []
    named: dict[str, bool] = {}  # account → whether the meeting names it
    about: dict[str, bool] = {}  # title → whether a window talks about it (titles recur)
    for row in commitments:
        entry_id, title, account = row[0], row[1], row[2]
        if account and account not in named:
            named[account] = said.says(account)
        if not (account and named[account]) and title not in about:
            about[title] = _talked_about(title, windows)
        if (account and named[account]) or about[title]:
            found.append(entry_id)
            if len(found) == most:
                break  # newest first: more would not fit the budget anyway
    return found


def _paraphrased(
    session: Session, org_id: str, meeting: MeetingOutput, known: set[str]
) -> list[Entry]:
    """Open commitments a turn (alone, or with the turn before it) talks about in other words."""
    embed = semantic.embedder()
    if embed is None:
        return []
    query = (
        select(*_ENTRY)
        .where(
            MemoryEntry.org_id == org_id,
            MemoryEntry.kind == "commitment",
            MemoryEntry.status == "open",
        )
        .order_by(MemoryEntry.created_at.desc(), MemoryEntry.id.desc())  # the index's order (0012)
        .limit(semantic.MAX_COMMITMENTS)
    )
    open_ = [_entry(r) for r in session.connection().execute(query) if r.id not in known]
    turns = [u.text for u in meeting.transcript]
    windows = [*turns, *(f"{a} {b}" for a, b in pairwise(turns))]
    return [open_[k] for k in semantic.talked_about(embed, [r.name for r in open_], windows)]


def _earlier(rows: list[Entry], meeting: MeetingOutput) -> list[Entry]:
    """Commitments made before this meeting: not its own, not a later meeting's (so a
    redelivery recalls what its first delivery did, whatever happened since)."""
    kept = []
    for row in rows:
        since = row.data.get("since")
        if row.data.get("meeting_id") == meeting.meeting_id:
            continue
        if since and _utc(datetime.fromisoformat(since)) >= _utc(meeting.start):
            continue
        kept.append(row)
    return kept


def _utc(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _stems(text: str) -> set[str]:
    return {w[:5] for w in words_of([text])}


@lru_cache(maxsize=8192)
def _title_stems(title: str) -> tuple[str, ...]:
    """The stems of a commitment's title (the same titles come back meeting after meeting)."""
    return tuple(w[:5] for w in words_of([title]))


def _talked_about(title: str, windows: dict[str, set[int]]) -> bool:
    """Most of the title's words fall in one window (`windows`: stem → windows)."""
    content = _title_stems(title)
    if len(content) < 2:
        return False
    # counted in C: a common stem falls in hundreds of an hour's windows
    counts = Counter(chain.from_iterable(windows.get(stem, ()) for stem in content))
    return bool(counts) and max(counts.values()) >= 0.6 * len(content)
