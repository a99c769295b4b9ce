"""The emulated org's metadata: objects, fields and what describe says about them.

Field definitions are built once; describe bodies are rendered once per object and
served from memory, so a describe call costs a dict lookup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EXTERNAL_ID_FIELD = "Meetsync_Key__c"

OPPORTUNITY_STAGES = [
    ("Prospecting", 10),
    ("Qualification", 10),
    ("Needs Analysis", 20),
    ("Value Proposition", 50),
    ("Id. Decision Makers", 60),
    ("Perception Analysis", 70),
    ("Proposal/Price Quote", 75),
    ("Negotiation/Review", 90),
    ("Closed Won", 100),
    ("Closed Lost", 0),
]
STAGE_PROBABILITY = dict(OPPORTUNITY_STAGES)
TASK_STATUSES = ["Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred"]
PRIORITIES = ["High", "Normal", "Low"]
LEAD_STATUSES = [
    "Open - Not Contacted",
    "Working - Contacted",
    "Closed - Converted",
    "Closed - Not Converted",
]

SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "currency": "xsd:double",
    "double": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
}
NUMERIC = {"currency", "double", "percent", "int"}
# Long text areas cannot be filtered, grouped or sorted in SOQL, as in a real org.
UNFILTERABLE = {"textarea"}


@dataclass(slots=True)
class FieldDef:
    """One field as describe reports it, plus what validation needs."""

    name: str
    type: str
    label: str = ""
    length: int = 0
    required: bool = False  # not nillable and not defaulted: a create must supply it
    createable: bool = True
    updateable: bool = True
    picklist: list[str] = field(default_factory=list)
    restricted: bool = False
    default: Any = None
    reference_to: list[str] = field(default_factory=list)
    external_id: bool = False
    unique: bool = False
    custom: bool = False

    @property
    def filterable(self) -> bool:
        return not (self.type in UNFILTERABLE and self.length > 255)

    def describe(self) -> dict[str, Any]:
        """The field as a describe call returns it."""
        return {
            "name": self.name,
            "label": self.label or self.name,
            "type": self.type,
            "soapType": SOAP_TYPES.get(self.type, "xsd:string"),
            "length": self.length,
            "byteLength": self.length * 3,
            "precision": 18 if self.type == "currency" else 0,
            "scale": 2 if self.type == "currency" else 0,
            "nillable": not self.required and self.type != "boolean" and self.name != "Id",
            "createable": self.createable,
            "updateable": self.updateable,
            "defaultedOnCreate": self.default is not None or self.type == "boolean",
            "defaultValue": self.default if self.type == "boolean" else None,
            "externalId": self.external_id,
            "unique": self.unique,
            "idLookup": self.name == "Id" or self.external_id,
            "custom": self.custom,
            "calculated": False,
            "filterable": self.filterable,
            "sortable": self.filterable,
            "picklistValues": [
                {
                    "active": True,
                    "defaultValue": v == self.default,
                    "label": v,
                    "value": v,
                    "validFor": None,
                }
                for v in self.picklist
            ],
            "restrictedPicklist": self.restricted,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.name[:-2] if self.type == "reference" else None,
        }


@dataclass(slots=True)
class ObjectDef:
    """One sObject type."""

    name: str
    key_prefix: str
    label: str
    fields: dict[str, FieldDef]
    by_lower: dict[str, FieldDef] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_lower = {name.lower(): f for name, f in self.fields.items()}

    def field(self, name: str) -> FieldDef | None:
        """A field by its case-insensitive API name."""
        return self.by_lower.get(name.lower())

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "labelPlural": self.label + "s",
            "keyPrefix": self.key_prefix,
            "custom": False,
            "createable": True,
            "updateable": True,
            "deletable": True,
            "queryable": True,
            "searchable": True,
            "fields": [f.describe() for f in self.fields.values()],
            "urls": {
                "sobject": f"/services/data/vXX.X/sobjects/{self.name}",
                "describe": f"/services/data/vXX.X/sobjects/{self.name}/describe",
                "rowTemplate": f"/services/data/vXX.X/sobjects/{self.name}/{{ID}}",
            },
        }


def _system_fields() -> list[FieldDef]:
    ro: dict[str, Any] = {"createable": False, "updateable": False}
    return [
        FieldDef("Id", "id", "Record ID", 18, **ro),
        FieldDef("IsDeleted", "boolean", "Deleted", **ro),
        FieldDef("CreatedDate", "datetime", "Created Date", **ro),
        FieldDef("CreatedById", "reference", "Created By ID", 18, reference_to=["User"], **ro),
        FieldDef("LastModifiedDate", "datetime", "Last Modified Date", **ro),
        FieldDef(
            "LastModifiedById", "reference", "Last Modified By ID", 18, reference_to=["User"], **ro
        ),
        FieldDef("SystemModstamp", "datetime", "System Modstamp", **ro),
    ]


def _owner() -> FieldDef:
    # Defaulted to the calling user when omitted, so not required on create.
    return FieldDef("OwnerId", "reference", "Owner ID", 18, reference_to=["User"], default="$user")


def _activity_links() -> list[FieldDef]:
    # Task and Event relate to the same records: a person (WhoId), a record (WhatId), and
    # the account Salesforce derives from them.
    return [
        FieldDef("WhoId", "reference", "Name ID", 18, reference_to=["Contact", "Lead"]),
        FieldDef(
            "WhatId", "reference", "Related To ID", 18, reference_to=["Account", "Opportunity"]
        ),
        FieldDef(
            "AccountId",
            "reference",
            "Account ID",
            18,
            reference_to=["Account"],
            createable=False,
            updateable=False,
        ),
    ]


def _object(name: str, prefix: str, label: str, fields: list[FieldDef]) -> ObjectDef:
    all_fields = _system_fields() + fields
    return ObjectDef(name, prefix, label, {f.name: f for f in all_fields})


def _activity_key(with_external_id: bool, unique: bool) -> list[FieldDef]:
    if not with_external_id:
        return []
    return [
        FieldDef(
            EXTERNAL_ID_FIELD,
            "string",
            "Meetsync Key",
            64,
            external_id=True,
            unique=unique,
            custom=True,
        )
    ]


def build_objects(
    *, external_id_field: bool = True, external_id_unique: bool = True
) -> dict[str, ObjectDef]:
    """The org's objects; `external_id_field=False` models an org without our custom field."""
    ro: dict[str, Any] = {"createable": False, "updateable": False}
    key = _activity_key(external_id_field, external_id_unique)
    objects = [
        _object(
            "User",
            "005",
            "User",
            [
                FieldDef("Username", "string", "Username", 80, required=True),
                FieldDef("FirstName", "string", "First Name", 40),
                FieldDef("LastName", "string", "Last Name", 80, required=True),
                FieldDef("Name", "string", "Full Name", 121, **ro),
                FieldDef("Email", "email", "Email", 128, required=True),
                FieldDef("Title", "string", "Title", 80),
                FieldDef("IsActive", "boolean", "Active"),
            ],
        ),
        _object(
            "Account",
            "001",
            "Account",
            [
                FieldDef("Name", "string", "Account Name", 255, required=True),
                FieldDef("Website", "url", "Website", 255),
                FieldDef(
                    "Industry",
                    "picklist",
                    "Industry",
                    255,
                    picklist=["Technology", "Healthcare", "Manufacturing", "Other"],
                ),
                FieldDef("Description", "textarea", "Account Description", 32000),
                _owner(),
            ],
        ),
        _object(
            "Contact",
            "003",
            "Contact",
            [
                FieldDef("FirstName", "string", "First Name", 40),
                FieldDef("LastName", "string", "Last Name", 80, required=True),
                FieldDef("Name", "string", "Full Name", 121, **ro),
                FieldDef("Email", "email", "Email", 80),
                FieldDef("Title", "string", "Title", 128),
                FieldDef("AccountId", "reference", "Account ID", 18, reference_to=["Account"]),
                _owner(),
            ],
        ),
        _object(
            "Lead",
            "00Q",
            "Lead",
            [
                FieldDef("FirstName", "string", "First Name", 40),
                FieldDef("LastName", "string", "Last Name", 80, required=True),
                FieldDef("Name", "string", "Full Name", 121, **ro),
                FieldDef("Company", "string", "Company", 255, required=True),
                FieldDef("Email", "email", "Email", 80),
                FieldDef("Title", "string", "Title", 128),
                FieldDef(
                    "Status",
                    "picklist",
                    "Lead Status",
                    255,
                    picklist=LEAD_STATUSES,
                    restricted=True,
                    default="Open - Not Contacted",
                ),
                FieldDef("IsConverted", "boolean", "Converted", **ro),
                FieldDef(
                    "ConvertedAccountId",
                    "reference",
                    "Converted Account ID",
                    18,
                    reference_to=["Account"],
                    **ro,
                ),
                _owner(),
            ],
        ),
        _object(
            "Opportunity",
            "006",
            "Opportunity",
            [
                FieldDef("Name", "string", "Name", 120, required=True),
                FieldDef("AccountId", "reference", "Account ID", 18, reference_to=["Account"]),
                FieldDef(
                    "StageName",
                    "picklist",
                    "Stage",
                    255,
                    required=True,
                    picklist=[s for s, _ in OPPORTUNITY_STAGES],
                    restricted=True,
                ),
                FieldDef("Amount", "currency", "Amount"),
                FieldDef("Probability", "percent", "Probability (%)"),
                FieldDef("CloseDate", "date", "Close Date", required=True),
                FieldDef("NextStep", "string", "Next Step", 255),
                FieldDef("Description", "textarea", "Description", 32000),
                FieldDef("IsClosed", "boolean", "Closed", **ro),
                FieldDef("IsWon", "boolean", "Won", **ro),
                _owner(),
            ],
        ),
        _object(
            "Task",
            "00T",
            "Task",
            [
                FieldDef(
                    "Subject",
                    "combobox",
                    "Subject",
                    255,
                    picklist=["Call", "Send Letter", "Send Quote", "Other"],
                ),
                FieldDef(
                    "Status",
                    "picklist",
                    "Status",
                    255,
                    picklist=TASK_STATUSES,
                    restricted=True,
                    default="Not Started",
                ),
                FieldDef(
                    "Priority",
                    "picklist",
                    "Priority",
                    255,
                    picklist=PRIORITIES,
                    restricted=True,
                    default="Normal",
                ),
                FieldDef("ActivityDate", "date", "Due Date Only"),
                FieldDef("Description", "textarea", "Description", 32000),
                FieldDef(
                    "Type", "picklist", "Type", 255, picklist=["Call", "Email", "Meeting", "Other"]
                ),
                FieldDef(
                    "TaskSubtype",
                    "picklist",
                    "Task Subtype",
                    255,
                    picklist=["Task", "Email", "Call"],
                    restricted=True,
                    default="Task",
                    updateable=False,
                ),
                *_activity_links(),
                FieldDef("IsClosed", "boolean", "Closed", **ro),
                _owner(),
                *key,
            ],
        ),
        _object(
            "Event",
            "00U",
            "Event",
            [
                FieldDef(
                    "Subject",
                    "combobox",
                    "Subject",
                    255,
                    picklist=["Call", "Email", "Meeting", "Send Letter/Quote", "Other"],
                ),
                FieldDef("StartDateTime", "datetime", "Start Date Time"),
                FieldDef("EndDateTime", "datetime", "End Date Time"),
                FieldDef("DurationInMinutes", "int", "Duration"),
                FieldDef("ActivityDate", "date", "Due Date Only"),
                FieldDef("IsAllDayEvent", "boolean", "All-Day Event"),
                FieldDef("Location", "string", "Location", 255),
                FieldDef("Description", "textarea", "Description", 32000),
                FieldDef(
                    "Type", "picklist", "Type", 255, picklist=["Call", "Email", "Meeting", "Other"]
                ),
                *_activity_links(),
                _owner(),
                *key,
            ],
        ),
    ]
    return {o.name: o for o in objects}
