"""Salesforce connector: upserts Tasks and Events, updates Opportunities, via simple-salesforce.

Actions (as the mapping engine emits them):
    upsert  target {object, owner_email, who_emails, what}: create, or update on re-apply
    update  target {object, id | match_emails + rule}: set fields on a matched record

Write policies (`op.target["write_policy"]`, see connectors/write_policy.py): before a write
that could overwrite a person's value, the record's current values are read (one GET, only
for ops that carry a policy) and `if_empty` / `unless_edited` fields are left out when
they must be; each receipt carries fingerprints of what it wrote (`extra["written"]`) and
the fields it left alone with the reason (`extra["skipped"]`).

Idempotency: where describe shows the External ID field (Meetsync_Key__c by default) the
write is an upsert on it, keyed by the op key, so a repeat can never duplicate. Without it,
the connector tags Subject with a short marker, `[ms:<16 hex of the op key>]`, and finds
records by `Subject LIKE '%[ms:…]'`. Subject because it is the only free-text field common
to Task and Event that SOQL can filter on (Description is a long text area, which SOQL
cannot filter); the marker is visible to users, which is the honest price of an org
without the External ID field, and the reason describe() notes which path a target uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar
from urllib.parse import quote

from connectors.base import (
    Check,
    ConnectionConfig,
    ConnectorFacts,
    Limits,
    Op,
    Outcome,
    Receipt,
    TargetSchema,
    apply_each,
)
from connectors.errors import ConnectorError, InvalidMapping, Permanent
from connectors.salesforce_fields import check_fields, has_external_id, target_schema
from connectors.salesforce_matching import Matcher, soql_quote
from connectors.salesforce_session import SalesforceSession
from connectors.write_policy import Decision, decide, policies_of, remember, written_fields

MARKER_FIELD = "Subject"


class SalesforceConnector(ConnectorFacts):
    """One org's Salesforce connection."""

    name: ClassVar[str] = "salesforce"
    # the provider's own hosts; any other needs the operator's allow-list
    endpoint_hosts: ClassVar[tuple[str, ...]] = ("*.salesforce.com", "*.force.com")
    # Salesforce caps an org at 25 concurrent long-running (>20 s) requests and meters calls
    # per rolling 24 h (Enterprise: 100,000 plus 1,000 per licence). Ten writes in flight
    # leaves the org's other integrations most of the 25; 2 ops/s (about 6 API calls each
    # second with lookups) spends under half the baseline daily budget if sustained all day,
    # and the throttle also reads `api_usage` to slow down as the budget runs out.
    default_limits: ClassVar[Limits] = Limits(rate=2.0, burst=20, concurrency=10)
    actions: ClassVar[tuple[str, ...]] = ("upsert", "update")
    # a connected app's refresh token, or the JWT bearer flow's user and private key
    credential_sets = (
        ("client_id", "client_secret", "refresh_token"),
        ("client_id", "username", "private_key"),
    )

    @classmethod
    def closing(cls, target: dict[str, Any]) -> dict[str, Any] | None:
        # a Task; other objects have no such status
        return {"Status": "Completed"} if target.get("object") == "Task" else None

    @classmethod
    def reopening(cls, target: dict[str, Any]) -> dict[str, Any] | None:
        # Salesforce's default open Task status
        return {"Status": "Not Started"} if target.get("object") == "Task" else None

    def __init__(self, config: ConnectionConfig) -> None:
        self.config = config
        self.session = SalesforceSession(config)
        self.matcher = Matcher(self.session)
        self.external_id_field = str(config.options.get("external_id_field", "Meetsync_Key__c"))
        self._describes: dict[str, dict[str, Any]] = {}

    @property
    def api_usage(self) -> tuple[int, int] | None:
        """(used, limit) of the org's daily API calls, from the last `Sforce-Limit-Info` seen.

        None until a response carried the header. The push path reads it after each apply
        (workers.throttle.feedback) to slow a connection down as its daily budget runs out.
        """
        return self.session.api_usage

    # -- the Connector protocol -----------------------------------------------------
    def describe(self, target: dict[str, Any]) -> TargetSchema:
        obj = str(target.get("object", ""))
        try:
            meta = self._describe(obj)
        except Permanent as exc:
            if exc.provider_code != "NOT_FOUND":
                raise
            return TargetSchema(
                target=target, exists=False, notes=[f"no sObject {obj!r} in this org"]
            )
        return target_schema(meta["name"], meta, self.external_id_field)

    def apply(self, op: Op, prior: Receipt | None) -> Receipt:
        if op.action == "upsert":
            return self._upsert(op, prior)
        if op.action == "update":
            return self._update(op, prior)
        raise InvalidMapping(f"salesforce has no action {op.action!r}; use upsert or update")

    def apply_many(self, writes: Sequence[tuple[Op, Receipt | None]]) -> list[Outcome]:
        """`apply` for each op of one push, one at a time, each lookup of the records they
        point at asked once (`Matcher.together`)."""
        with self.matcher.together():
            return apply_each(self, writes)

    def find(self, op: Op) -> Receipt | None:
        if op.action == "update":
            obj, record_id = self.matcher.resolve(op.target)
            meta = self._describe(obj)
            wanted = check_fields(obj, meta, op.fields, creating=False, updating=True)
            current = self.session.rest("GET", f"sobjects/{obj}/{record_id}")
            if not all(_same(current.get(k), v) for k, v in wanted.items()):
                return None
            receipt = self._receipt(obj, record_id, created=False)
            # the record holds this very payload: the write in doubt landed, none is needed
            receipt.extra["payload_hash"] = op.payload_hash
            return receipt
        obj = self._object(op)
        meta = self._describe(obj)
        if has_external_id(meta, self.external_id_field):
            where = f"{self.external_id_field} = {soql_quote(op.key)}"
        else:
            where = f"{MARKER_FIELD} LIKE {soql_quote('%' + marker(op))}"
        # read the op's own fields back, so a write that landed with this very payload is
        # recognised as done and not sent a second time
        known = {field["name"] for field in meta.get("fields", [])}
        columns = ", ".join(["Id", *sorted(k for k in op.fields if k in known and k != "Id")])
        rows = self.session.query(
            f"SELECT {columns} FROM {obj} WHERE {where} ORDER BY CreatedDate LIMIT 2"
        )
        if not rows:
            return None
        receipt = self._receipt(obj, rows[0]["Id"], created=True)
        receipt.extra["duplicates"] = len(rows) - 1
        if all(_same(rows[0].get(k), v) for k, v in op.fields.items()):
            receipt.extra["payload_hash"] = op.payload_hash
        return receipt

    def check(self) -> list[Check]:
        """`connections test`: sign in, who the integration user is, the daily API budget."""
        try:
            self.session.call(lambda sf: None)
        except ConnectorError as exc:
            return [Check(name="sign in", ok=False, detail=f"{type(exc).__name__}: {exc}")]
        checks = [Check(name="sign in", ok=True, detail=self.session.instance_url)]
        probes: list[tuple[str, Callable[[], str]]] = [
            ("user", self._whoami),
            ("limits", self._daily_budget),
        ]
        for name, probe in probes:
            try:
                checks.append(Check(name=name, ok=True, detail=probe()))
            except ConnectorError as exc:
                checks.append(Check(name=name, ok=False, detail=f"{type(exc).__name__}: {exc}"))
        return checks

    def people(self) -> list[dict[str, Any]]:
        """For org memory (`meetsync memory sync`): active users and contacts, with ids."""
        found = []
        for obj, where in (("User", " WHERE IsActive = true"), ("Contact", "")):
            soql = f"SELECT Id, Name, Email, Title FROM {obj}{where} LIMIT 2000"
            for row in self.session.query(soql):
                if row.get("Name"):
                    person = {"ref": row["Id"], "name": row["Name"], "email": row.get("Email")}
                    found.append(person | {"role": row.get("Title"), "salesforce_id": row["Id"]})
        return found

    def current_values(self, op: Op) -> dict[str, Any] | None:
        """The record's present values of the op's fields (for previews); None if not there yet."""
        if op.action == "update":
            obj, record_id = self.matcher.resolve(op.target)
        else:
            found = self.find(op)
            if found is None:
                return None
            obj, record_id = found.object or self._object(op), found.external_id
        record = self.session.rest("GET", f"sobjects/{obj}/{record_id}")
        by_name = {str(k).lower(): v for k, v in record.items()}
        return {name: by_name.get(name.lower()) for name in op.fields}

    def record_url(self, op: Op) -> str | None:
        """The link of the record an op writes, when it exists already (for review)."""
        if op.action == "update":
            obj, record_id = self.matcher.resolve(op.target)
            return self.session.record_url(obj, record_id)
        found = self.find(op)
        return found.url if found is not None else None

    def candidates(self, op: Op) -> list[dict[str, str]]:
        """The records an update whose rule is `ask` could mean, when there are several."""
        if op.action != "update" or op.target.get("rule") != "ask":
            return []
        rows = self.matcher.open_opportunities(op.target)
        return [
            {"label": f"{r['Name']} (closes {r.get('CloseDate') or '?'})", "value": str(r["Id"])}
            for r in rows
        ]

    def record_owner_email(self, op: Op) -> str | None:
        """The email of the user who owns the record an update writes (a review approver)."""
        if op.action != "update":
            return None
        obj, record_id = self.matcher.resolve(op.target)
        owner = self.session.rest("GET", f"sobjects/{obj}/{record_id}").get("OwnerId")
        if not owner:
            return None
        rows = self.session.query(
            f"SELECT Email FROM User WHERE Id = {soql_quote(str(owner))} LIMIT 1"
        )
        return str(rows[0]["Email"]) if rows and rows[0].get("Email") else None

    def _whoami(self) -> str:
        rows = self.session.query(
            f"SELECT Username FROM User WHERE Id = {soql_quote(self.session.user_id or '')} LIMIT 1"
        )
        return str(rows[0]["Username"]) if rows else f"user {self.session.user_id}"

    def _daily_budget(self) -> str:
        daily = (self.session.rest("GET", "limits") or {}).get("DailyApiRequests") or {}
        return f"DailyApiRequests: {daily.get('Remaining')} of {daily.get('Max')} left"

    # -- upsert -----------------------------------------------------------------------
    def _upsert(self, op: Op, prior: Receipt | None) -> Receipt:
        obj = self._object(op)
        meta = self._describe(obj)
        body = check_fields(obj, meta, op.fields, creating=True, updating=True)
        existing = prior
        policies = policies_of(op.target, list(body))
        if policies:
            existing = prior or self.find(op)
        decision = self._guard(obj, existing, body, policies, prior)
        body = dict(decision.write)
        links, notes = self._links(op.target)
        body.update(links)
        if has_external_id(meta, self.external_id_field):
            # the key rides in the URL; Salesforce refuses it (and Id) in the body as well
            body = {
                k: v
                for k, v in body.items()
                if k.lower() not in ("id", self.external_id_field.lower())
            }
            # simple-salesforce joins the value into the URL as is: encode it ourselves.
            path = f"sobjects/{obj}/{self.external_id_field}/{quote(op.key, safe='')}"
            result = self.session.rest("PATCH", path, body)
            if result is None:  # API < 46.0 answers an update with 204 and no body
                found = self.find(op)
                if found is None:
                    raise Permanent(f"upsert of {obj} {op.key} left no record")
                return self._record(found, prior, decision)
            receipt = self._receipt(obj, result["id"], created=bool(result.get("created")))
        else:
            receipt = self._marked_write(op, obj, meta, body, existing)
        receipt.extra.update(notes)
        return self._record(receipt, prior, decision)

    def _marked_write(
        self,
        op: Op,
        obj: str,
        meta: dict[str, Any],
        body: dict[str, Any],
        existing: Receipt | None,
    ) -> Receipt:
        if not any(f["name"] == MARKER_FIELD for f in meta["fields"]):
            raise InvalidMapping(
                f"{obj} has no External ID field {self.external_id_field} and no "
                f"{MARKER_FIELD} to carry a marker: add the field to make writes idempotent"
            )
        tag = marker(op)
        subject = str(body.get(MARKER_FIELD) or "").strip()
        tagged = f"{subject} {tag}".strip()
        if len(tagged) > 255:
            raise InvalidMapping(
                f"{obj}.{MARKER_FIELD} is {len(subject)} characters; with the marker {tag} it "
                "exceeds 255",
                provider_code="STRING_TOO_LONG",
            )
        if MARKER_FIELD in body or existing is None:
            body[MARKER_FIELD] = tagged
        existing = existing or self.find(op)
        if existing is not None:
            try:
                self.session.rest("PATCH", f"sobjects/{obj}/{existing.external_id}", body)
                return self._receipt(obj, existing.external_id, created=False)
            except Permanent as exc:
                if exc.provider_code not in ("NOT_FOUND", "ENTITY_IS_DELETED"):
                    raise
                body[MARKER_FIELD] = tagged  # deleted by a person: write it afresh
        result = self.session.rest("POST", f"sobjects/{obj}", body)
        return self._receipt(obj, result["id"], created=True)

    def _links(self, target: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
        """OwnerId, WhoId and WhatId for an upsert target, plus notes for the receipt."""
        links: dict[str, str] = {}
        notes: dict[str, Any] = {}
        if target.get("owner_email"):
            links["OwnerId"] = self.matcher.owner_id(str(target["owner_email"]))
        who_emails = [str(e) for e in target.get("who_emails") or []]
        what = target.get("what")
        match_emails = [str(e) for e in (what or {}).get("match_emails") or []]
        people = self.matcher.people(who_emails + match_emails)
        who = self.matcher.who(who_emails, people)
        if who is not None:
            links["WhoId"] = who["Id"]
        if what:
            try:
                _, links["WhatId"] = self.matcher.resolve(what, people)
            except Permanent as exc:
                if what.get("required", True) or exc.provider_code not in (
                    "NO_MATCH",
                    "AMBIGUOUS_MATCH",
                ):
                    raise
                notes["unlinked"] = f"{exc.provider_code}: {exc.message}"
        if who is not None and who["object"] == "Lead" and "WhatId" in links:
            # Salesforce refuses a Lead together with a related-to record; the account
            # or opportunity tells a seller more than the unconverted lead does.
            del links["WhoId"]
            notes["lead_dropped"] = who["Id"]
        return links, notes

    # -- update ---------------------------------------------------------------------
    def _update(self, op: Op, prior: Receipt | None) -> Receipt:
        obj, record_id = self.matcher.resolve(op.target)
        meta = self._describe(obj)
        body = check_fields(obj, meta, op.fields, creating=False, updating=True)
        here = self._receipt(obj, record_id, created=False)
        decision = self._guard(obj, here, body, policies_of(op.target, list(body)), prior)
        if decision.write:
            self.session.rest("PATCH", f"sobjects/{obj}/{record_id}", decision.write)
        return self._record(here, prior, decision)

    # -- write policies -------------------------------------------------------------
    def _guard(
        self,
        obj: str,
        existing: Receipt | None,
        body: dict[str, Any],
        policies: dict[str, str],
        prior: Receipt | None,
    ) -> Decision:
        """The fields of `body` the op's write policies let through, read just before writing."""
        if not policies or existing is None:
            return Decision(write=body)
        try:
            record = self.session.rest("GET", f"sobjects/{obj}/{existing.external_id}")
        except Permanent as exc:
            if exc.provider_code not in ("NOT_FOUND", "ENTITY_IS_DELETED"):
                raise
            return Decision(write=body)  # deleted by a person: the write starts afresh
        by_name = {str(k).lower(): v for k, v in record.items()}
        current = {name: by_name.get(name.lower()) for name in body}
        written = written_fields(prior.extra if prior else None, existing.external_id)
        return decide(body, policies, current, written)

    def _record(self, receipt: Receipt, prior: Receipt | None, decision: Decision) -> Receipt:
        """Note in the receipt what was written (as fingerprints) and what was left alone."""
        receipt.extra["written"] = remember(
            receipt.external_id, prior.extra if prior else None, decision.write
        )
        if decision.skipped:
            receipt.extra["skipped"] = decision.skipped
        return receipt

    # -- shared -----------------------------------------------------------------------
    def _object(self, op: Op) -> str:
        obj = op.target.get("object")
        if not obj:
            raise InvalidMapping("a salesforce target needs an object (Task, Event, …)")
        return str(obj)

    def _describe(self, obj: str) -> dict[str, Any]:
        """Describe of an object, cached for the life of the connection."""
        if obj not in self._describes:
            self._describes[obj] = self.session.rest("GET", f"sobjects/{obj}/describe")
        return self._describes[obj]

    def _receipt(self, obj: str, record_id: str, *, created: bool) -> Receipt:
        return Receipt(
            external_id=record_id,
            object=obj,
            url=self.session.record_url(obj, record_id),
            extra={"created": created},
        )


def marker(op: Op) -> str:
    """The Subject tag that finds an op's record when the org has no External ID field."""
    return f"[ms:{op.key[:16]}]"


def _same(current: Any, wanted: Any) -> bool:
    if isinstance(wanted, (int, float)) and isinstance(current, (int, float)):
        return float(current) == float(wanted)
    return bool(current == wanted)
