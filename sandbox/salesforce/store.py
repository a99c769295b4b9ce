"""The org's records in memory: create, update, upsert, delete, with Salesforce's checks.

Callers hold the provider's lock; nothing here is thread-safe on its own.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from sandbox.salesforce import ids
from sandbox.salesforce.faults import SalesforceFault, not_found
from sandbox.salesforce.rules import enforce
from sandbox.salesforce.schema import STAGE_PROBABILITY, ObjectDef
from sandbox.salesforce.values import clean, end_after, parse_datetime, sf_datetime

Record = dict[str, Any]


class Store:
    """All records by object and id, plus an index on every External ID field."""

    def __init__(self, objects: dict[str, ObjectDef]) -> None:
        self.objects = objects
        self.by_lower = {name.lower(): o for name, o in objects.items()}
        self.records: dict[str, dict[str, Record]] = {name: {} for name in objects}
        self.owner_of: dict[str, str] = {}  # record id → object name
        self.serial = 0
        self.rules: list[dict[str, Any]] = []
        # active duplicate rules: {"object": "Contact", "match": ["Email"]}, blocking on save
        self.duplicate_rules: list[dict[str, Any]] = []
        self.external: dict[tuple[str, str], dict[str, set[str]]] = defaultdict(dict)
        self._ext_fields = {
            name: [f.name for f in o.fields.values() if f.external_id]
            for name, o in objects.items()
        }

    # -- lookups --------------------------------------------------------------------
    def object(self, name: str) -> ObjectDef:
        """An object by case-insensitive name; unknown names are a 404, as in a real org."""
        found = self.by_lower.get(name.lower())
        if found is None:
            raise SalesforceFault(404, "NOT_FOUND", "The requested resource does not exist")
        return found

    def get(self, obj: str, record_id: str) -> Record:
        full = ids.normalize(record_id)
        record = self.records[obj].get(full) if full else None
        if record is None:
            raise not_found()
        return record

    def by_external(self, obj: str, field: str, value: str) -> list[str]:
        """Ids whose External ID `field` equals `value` (case-insensitively, as Salesforce)."""
        return sorted(self.external[(obj, field)].get(value.lower(), ()))

    # -- writes ---------------------------------------------------------------------
    def insert(
        self, obj: str, body: dict[str, Any], user_id: str, *, trusted: bool = False
    ) -> Record:
        """Create a record; `trusted` skips createable checks (seeding and admin inserts)."""
        odef = self.objects[obj]
        values = self._clean(odef, body, creating=True, trusted=trusted)
        record: Record = {name: None for name in odef.fields}
        for name, f in odef.fields.items():
            if f.type == "boolean":
                record[name] = False
            elif f.default is not None:
                record[name] = user_id if f.default == "$user" else f.default
        record.update(values)
        self.serial += 1
        record_id = ids.make_id(odef.key_prefix, self.serial)
        now = sf_datetime(datetime.now(UTC))
        record.update(
            Id=record_id,
            CreatedDate=now,
            LastModifiedDate=now,
            SystemModstamp=now,
            CreatedById=user_id,
            LastModifiedById=user_id,
        )
        self._derive(obj, record, set(values))
        self._check(obj, record, None)
        self.records[obj][record_id] = record
        self.owner_of[record_id] = obj
        self._index(obj, record, None)
        return record

    def update(self, obj: str, record_id: str, body: dict[str, Any], user_id: str) -> Record:
        odef = self.objects[obj]
        current = self.get(obj, record_id)
        values = self._clean(odef, body, creating=False, trusted=False)
        record = {**current, **values}
        self._derive(obj, record, set(values))
        self._check(obj, record, current["Id"])
        record.update(LastModifiedDate=sf_datetime(datetime.now(UTC)), LastModifiedById=user_id)
        record["SystemModstamp"] = record["LastModifiedDate"]
        self._index(obj, record, current)
        self.records[obj][current["Id"]] = record
        return record

    def delete(self, obj: str, record_id: str) -> None:
        record = self.get(obj, record_id)
        del self.records[obj][record["Id"]]
        self.owner_of.pop(record["Id"], None)
        self._index(obj, None, record)

    def restore(self, obj: str, record: Record) -> None:
        """Put a record back exactly as it was (an allOrNone collection rolling back)."""
        current = self.records[obj].get(record["Id"])
        self._index(obj, record, current)
        self.records[obj][record["Id"]] = record
        self.owner_of[record["Id"]] = obj

    def upsert(
        self, obj: str, field: str, value: str, body: dict[str, Any], user_id: str
    ) -> tuple[bool, Record]:
        """(created, record) for an upsert on External ID `field`; 300 when several match."""
        odef = self.objects[obj]
        f = odef.field(field)
        if f is None or not f.external_id:
            raise SalesforceFault(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {field}",
            )
        matches = self.by_external(obj, f.name, value)
        if len(matches) > 1:
            raise MultipleMatches(obj, matches)
        body = {k: v for k, v in body.items() if k.lower() != f.name.lower()}
        if matches:
            return False, self.update(obj, matches[0], body, user_id)
        return True, self.insert(obj, {**body, f.name: value}, user_id)

    # -- internals ------------------------------------------------------------------
    def _clean(
        self, odef: ObjectDef, body: dict[str, Any], *, creating: bool, trusted: bool
    ) -> Record:
        values: Record = {}
        for key, raw in body.items():
            if key == "attributes":
                continue
            f = odef.field(key)
            if f is None:
                raise SalesforceFault(
                    400, "INVALID_FIELD", f"No such column '{key}' on sobject of type {odef.name}"
                )
            if not trusted and not (f.createable if creating else f.updateable):
                raise SalesforceFault(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {f.name}. Please check the security "
                    "settings of this field and verify that it is read/write for your profile "
                    "or permission set.",
                    [f.name],
                )
            value = clean(f, raw)
            if f.type == "reference" and value is not None:
                self._check_reference(f.name, f.label, f.reference_to, value)
            values[f.name] = value
        return values

    def _check_reference(self, name: str, label: str, allowed: list[str], value: str) -> None:
        target = self.owner_of.get(value)
        if target is None:
            prefix_objects = [
                o.name for o in self.objects.values() if value.startswith(o.key_prefix)
            ]
            if prefix_objects and prefix_objects[0] not in allowed:
                raise SalesforceFault(
                    400,
                    "FIELD_INTEGRITY_EXCEPTION",
                    f"{label}: id value of incorrect type: {value}",
                    [name],
                )
            raise SalesforceFault(
                400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [name]
            )
        if target not in allowed:
            raise SalesforceFault(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                f"{label}: id value of incorrect type: {value}",
                [name],
            )

    def _derive(self, obj: str, record: Record, changed: set[str]) -> None:
        """Fields a real org computes: names, closed flags, probabilities, activity accounts."""
        if "LastName" in record and record.get("LastName") is not None:
            record["Name"] = " ".join(p for p in (record.get("FirstName"), record["LastName"]) if p)
        if obj == "Opportunity" and record.get("StageName"):
            stage = record["StageName"]
            record["IsClosed"] = stage in ("Closed Won", "Closed Lost")
            record["IsWon"] = stage == "Closed Won"
            if "StageName" in changed and "Probability" not in changed:
                record["Probability"] = float(STAGE_PROBABILITY.get(stage, 0))
        if obj == "Task":
            record["IsClosed"] = record.get("Status") == "Completed"
        if obj == "Event":
            self._derive_event(record)
        if obj in ("Task", "Event"):
            record["AccountId"] = self._activity_account(record)

    def _derive_event(self, record: Record) -> None:
        start, end = record.get("StartDateTime"), record.get("EndDateTime")
        if record.get("IsAllDayEvent"):
            return
        if start is None:
            raise SalesforceFault(
                400,
                "REQUIRED_FIELD_MISSING",
                "Required fields are missing: [StartDateTime]",
                ["StartDateTime"],
            )
        if end is None and record.get("DurationInMinutes") is not None:
            record["EndDateTime"] = end = end_after(start, record["DurationInMinutes"])
        if end is None:
            raise SalesforceFault(
                400,
                "REQUIRED_FIELD_MISSING",
                "Required fields are missing: [DurationInMinutes]",
                ["DurationInMinutes"],
            )
        begin, finish = parse_datetime(start), parse_datetime(end)
        assert begin is not None and finish is not None
        if finish < begin:
            raise SalesforceFault(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                "End Date Time: End time can't be before start time",
                ["EndDateTime"],
            )
        record["DurationInMinutes"] = int((finish - begin).total_seconds() // 60)
        record["ActivityDate"] = begin.date().isoformat()

    def _activity_account(self, record: Record) -> str | None:
        what, who = record.get("WhatId"), record.get("WhoId")
        if what and self.owner_of.get(what) == "Account":
            return str(what)
        if what and self.owner_of.get(what) == "Opportunity":
            return self.records["Opportunity"][what].get("AccountId")
        if who and self.owner_of.get(who) == "Contact":
            return self.records["Contact"][who].get("AccountId")
        return None

    def _check(self, obj: str, record: Record, own_id: str | None) -> None:
        odef = self.objects[obj]
        missing = [n for n, f in odef.fields.items() if f.required and record.get(n) is None]
        if missing:
            raise SalesforceFault(
                400,
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )
        who, what = record.get("WhoId"), record.get("WhatId")
        if who and what and self.owner_of.get(who) == "Lead":
            raise SalesforceFault(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                "Related To ID: You can't associate a lead with a related-to record",
                ["WhatId"],
            )
        for name in self._ext_fields[obj]:
            value = record.get(name)
            if value is None or not odef.fields[name].unique:
                continue
            clash = [i for i in self.by_external(obj, name, value) if i != own_id]
            if clash:
                raise SalesforceFault(
                    400,
                    "DUPLICATE_VALUE",
                    f"duplicate value found: {name} duplicates value on record with id: {clash[0]}",
                    [],
                )
        self._check_owner(obj, record)
        self._check_duplicates(obj, record, own_id)
        enforce(self.rules, obj, record)

    def _check_owner(self, obj: str, record: Record) -> None:
        """A record owned by a deactivated user cannot be saved, whoever edits it."""
        owner = self.records.get("User", {}).get(str(record.get("OwnerId") or ""))
        if owner is not None and owner.get("IsActive") is False:
            raise SalesforceFault(
                400,
                "INACTIVE_OWNER_OR_USER",
                f"operation performed with inactive user [{owner['Id']}] as owner of {obj.lower()}",
                [],
            )

    def _check_duplicates(self, obj: str, record: Record, own_id: str | None) -> None:
        """Blocking duplicate rules, as on Contacts, Leads and Accounts in a real org."""
        for rule in self.duplicate_rules:
            if rule.get("object") != obj or obj not in ("Contact", "Lead", "Account"):
                continue
            names = list(rule.get("match") or [])
            wanted = [str(record.get(n) or "").strip().lower() for n in names]
            if not names or not all(wanted):
                continue
            for other in self.records[obj].values():
                same = [str(other.get(n) or "").strip().lower() for n in names]
                if other["Id"] != own_id and same == wanted:
                    raise SalesforceFault(
                        400,
                        "DUPLICATES_DETECTED",
                        "Use one of these records?",
                        [],
                    )

    def _index(self, obj: str, new: Record | None, old: Record | None) -> None:
        for name in self._ext_fields[obj]:
            index = self.external[(obj, name)]
            if old is not None and old.get(name) is not None:
                index.get(old[name].lower(), set()).discard(old["Id"])
            if new is not None and new.get(name) is not None:
                index.setdefault(new[name].lower(), set()).add(new["Id"])


class MultipleMatches(Exception):
    """An upsert or lookup by External ID matched several records (HTTP 300)."""

    def __init__(self, obj: str, record_ids: list[str]) -> None:
        super().__init__(f"{len(record_ids)} {obj} records match")
        self.obj = obj
        self.record_ids = record_ids
