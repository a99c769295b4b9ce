"""Finding the records an op points at: owners by email, people, accounts, opportunities.

Ids win; otherwise attendee emails lead to Contacts (or Leads), their Accounts, and those
Accounts' open Opportunities. Several candidates are settled by the op's rule; when the
rule cannot settle them, or nothing matches, the op fails as AMBIGUOUS_MATCH or NO_MATCH:
reported, never guessed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date
from typing import Any

from connectors.errors import InvalidMapping, Permanent
from connectors.salesforce_session import SalesforceSession

# `ask`: a person picks among several (review, workers/review.py); unpicked, it is `only`
RULES = ("only", "nearest_close_date", "largest_amount", "ask")
USER_CACHE_SECONDS = 600.0  # people rarely change email; one lookup per user per 10 minutes


def soql_quote(value: str) -> str:
    """A SOQL string literal: backslashes and quotes escaped, as the SOQL reference says."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f"'{escaped}'"


def soql_list(values: list[str]) -> str:
    return "(" + ", ".join(soql_quote(v) for v in values) + ")"


def no_match(message: str) -> Permanent:
    return Permanent(message, provider_code="NO_MATCH")


def ambiguous(message: str) -> Permanent:
    return Permanent(message, provider_code="AMBIGUOUS_MATCH")


class Matcher:
    """Resolves an op's target into record ids, through SOQL on one session.

    Inside `together()` (one push's ops: one meeting, one moment) each lookup is asked of
    Salesforce once: a meeting's task and its opportunity update match the same attendees.
    """

    def __init__(self, session: SalesforceSession) -> None:
        self.session = session
        self._users: dict[str, tuple[str, float]] = {}
        self._memo: ContextVar[dict[str, list[dict[str, Any]]] | None] = ContextVar(
            f"matcher_memo_{id(self)}", default=None
        )

    @contextmanager
    def together(self) -> Iterator[None]:
        """Lookups asked once each until the block ends (one thread's, one push's)."""
        token = self._memo.set({})
        try:
            yield
        finally:
            self._memo.reset(token)

    def _query(self, soql: str) -> list[dict[str, Any]]:
        memo = self._memo.get()
        if memo is None:
            return self.session.query(soql)
        if soql not in memo:
            memo[soql] = self.session.query(soql)
        return memo[soql]

    def owner_id(self, email: str) -> str:
        """The active User with this email."""
        key = email.strip().lower()
        cached = self._users.get(key)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        rows = self._query(
            f"SELECT Id FROM User WHERE Email = {soql_quote(key)} AND IsActive = true "
            "ORDER BY CreatedDate LIMIT 2"
        )
        if not rows:
            raise no_match(f"no active Salesforce user has the email {email}")
        if len(rows) > 1:
            raise ambiguous(f"several active Salesforce users have the email {email}")
        self._users[key] = (rows[0]["Id"], time.monotonic() + USER_CACHE_SECONDS)
        return str(rows[0]["Id"])

    def people(self, emails: list[str]) -> dict[str, dict[str, Any]]:
        """Contacts by lower-cased email, and Leads for emails no Contact has."""
        wanted = sorted({e.strip().lower() for e in emails if e and e.strip()})
        if not wanted:
            return {}
        found: dict[str, dict[str, Any]] = {}
        for row in self._query(
            f"SELECT Id, Email, AccountId FROM Contact WHERE Email IN {soql_list(wanted)} "
            "ORDER BY CreatedDate LIMIT 200"
        ):
            found.setdefault(str(row["Email"]).lower(), {"object": "Contact", **row})
        rest = [e for e in wanted if e not in found]
        if rest:
            for row in self._query(
                "SELECT Id, Email, Company, IsConverted, ConvertedAccountId FROM Lead "
                f"WHERE Email IN {soql_list(rest)} ORDER BY CreatedDate LIMIT 200"
            ):
                found.setdefault(str(row["Email"]).lower(), {"object": "Lead", **row})
        return found

    def who(self, emails: list[str], people: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
        """The first attendee, in the op's order, who is a Contact; else the first Lead."""
        hits = [people[e.strip().lower()] for e in emails if e and e.strip().lower() in people]
        contacts = [h for h in hits if h["object"] == "Contact"]
        first = contacts or hits
        return first[0] if first else None

    def accounts(self, emails: list[str], people: dict[str, dict[str, Any]]) -> list[str]:
        """Accounts of the attendees, most-attended first, each once."""
        counts: dict[str, int] = {}
        companies: list[str] = []
        for email in emails:
            hit = people.get(email.strip().lower())
            if hit is None:
                continue
            account = hit.get("AccountId") or hit.get("ConvertedAccountId")
            if account:
                counts[account] = counts.get(account, 0) + 1
            elif hit["object"] == "Lead" and hit.get("Company"):
                companies.append(str(hit["Company"]))
        if companies:
            for row in self._query(
                f"SELECT Id FROM Account WHERE Name IN {soql_list(sorted(set(companies)))} LIMIT 50"
            ):
                counts.setdefault(row["Id"], 1)
        return sorted(counts, key=lambda a: -counts[a])

    def resolve(
        self, spec: dict[str, Any], people: dict[str, dict[str, Any]] | None = None
    ) -> tuple[str, str]:
        """(object, id) of a what/update target: {object, id, match_emails, rule}."""
        obj = str(spec.get("object") or "Opportunity")
        rule = str(spec.get("rule") or "only")
        if rule not in RULES:
            raise InvalidMapping(f"unknown match rule {rule!r}; use one of {', '.join(RULES)}")
        if spec.get("id"):
            return obj, str(spec["id"])
        emails = [str(e) for e in spec.get("match_emails") or []]
        if not emails:
            raise no_match(f"no {obj} id and no attendee emails to match on")
        people = people if people is not None else self.people(emails)
        accounts = self.accounts(emails, people)
        if not accounts:
            raise no_match(f"no Contact or Lead with an Account among {', '.join(emails)}")
        if obj == "Account":
            return obj, self._one_account(accounts, emails, people, rule)
        if obj != "Opportunity":
            raise InvalidMapping(
                f"matching by attendees finds Accounts or Opportunities, not {obj}"
            )
        return obj, self._opportunity(accounts, rule, spec.get("as_of"))

    def open_opportunities(self, spec: dict[str, Any]) -> list[dict[str, Any]]:
        """The open Opportunities an update target without an id could mean (for `ask`)."""
        if spec.get("id") or str(spec.get("object") or "Opportunity") != "Opportunity":
            return []
        emails = [str(e) for e in spec.get("match_emails") or []]
        accounts = self.accounts(emails, self.people(emails)) if emails else []
        if not accounts:
            return []
        return list(
            self._query(
                "SELECT Id, Name, CloseDate FROM Opportunity "
                f"WHERE AccountId IN {soql_list(accounts)} AND IsClosed = false "
                "ORDER BY CloseDate LIMIT 100"
            )
        )

    def _one_account(
        self, accounts: list[str], emails: list[str], people: dict[str, dict[str, Any]], rule: str
    ) -> str:
        if len(accounts) > 1 and rule in ("only", "ask"):
            raise ambiguous(f"attendees belong to {len(accounts)} accounts: {accounts}")
        counts = [
            sum(1 for e in emails if (people.get(e.lower()) or {}).get("AccountId") == a)
            for a in accounts
        ]
        if len(accounts) > 1 and counts[0] == counts[1]:
            raise ambiguous(f"attendees are split evenly across accounts {accounts}")
        return accounts[0]

    def _opportunity(self, accounts: list[str], rule: str, as_of: Any) -> str:
        rows = self._query(
            "SELECT Id, Name, AccountId, Amount, CloseDate FROM Opportunity "
            f"WHERE AccountId IN {soql_list(accounts)} AND IsClosed = false "
            "ORDER BY CloseDate LIMIT 200"
        )
        if not rows:
            raise no_match(f"no open Opportunity on accounts {', '.join(accounts)}")
        if len(rows) == 1:
            return str(rows[0]["Id"])
        names = ", ".join(str(r["Name"]) for r in rows)
        if rule in ("only", "ask"):
            raise ambiguous(f"{len(rows)} open opportunities match: {names}")
        if rule == "largest_amount":
            scored = [(float(r["Amount"]), r) for r in rows if r.get("Amount") is not None]
            best = max((s for s, _ in scored), default=None)
        else:
            today = date.fromisoformat(str(as_of)) if as_of else date.today()
            scored = [
                (-abs((date.fromisoformat(r["CloseDate"]) - today).days), r)
                for r in rows
                if r.get("CloseDate")
            ]
            best = max((s for s, _ in scored), default=None)
        winners = [r for s, r in scored if s == best]
        if len(winners) != 1:
            raise ambiguous(f"rule {rule} cannot choose among: {names}")
        return str(winners[0]["Id"])
