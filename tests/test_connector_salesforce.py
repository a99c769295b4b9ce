"""The Salesforce connector through simple-salesforce against the emulator."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.base import Op, Receipt
from connectors.errors import AuthExpired, InvalidMapping, Permanent, RateLimited, Transient
from connectors.salesforce import SalesforceConnector, marker
from connectors.write_policy import EDITED, HELD
from sandbox.salesforce.auth import DEFAULTS
from sandbox.server import Sandbox
from tests.contract.case_salesforce import admin_client, connection, task_op

Records = dict[str, list[dict[str, Any]]]


class Org:
    """A connector and the inspection client for one emulated org."""

    def __init__(self, sandbox: Sandbox, **options: Any) -> None:
        self.sandbox = sandbox
        self.admin = admin_client(sandbox)
        self.connector = SalesforceConnector(connection(sandbox, **options))

    def records(self) -> Records:
        result: Records = self.admin.state()["records"]
        return result

    def one(self, obj: str, **where: Any) -> dict[str, Any]:
        rows = [r for r in self.records()[obj] if all(r.get(k) == v for k, v in where.items())]
        assert len(rows) == 1, rows
        return rows[0]

    def id_of(self, obj: str, **where: Any) -> str:
        return str(self.one(obj, **where)["Id"])

    def admin_post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.admin.http.post(path, json=body)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


def _running(**options: Any) -> Iterator[Sandbox]:
    with Sandbox(only=["salesforce"], options={"salesforce": options}) as sandbox:
        yield sandbox
        # Tracebacks kept by pytest.raises form cycles that hold client sockets open, and
        # the server waits for open connections before it stops: collect them first.
        gc.collect()


@pytest.fixture(scope="module")
def sf_sandbox() -> Iterator[Sandbox]:
    yield from _running()


@pytest.fixture
def org(sf_sandbox: Sandbox) -> Iterator[Org]:
    sf_sandbox.reset()
    sf_sandbox.providers["salesforce"].faults.clear()
    made = Org(sf_sandbox)
    yield made
    made.connector.session.http.close()
    made.admin.http.close()


@pytest.fixture(scope="module")
def keyless_sandbox() -> Iterator[Sandbox]:
    yield from _running(external_id_field=False)


@pytest.fixture
def keyless(keyless_sandbox: Sandbox) -> Iterator[Org]:
    keyless_sandbox.reset()
    made = Org(keyless_sandbox)
    yield made
    made.connector.session.http.close()
    made.admin.http.close()


@pytest.fixture(scope="module")
def shared_key() -> Iterator[Org]:
    """An org whose Meetsync_Key__c is an External ID but not unique."""
    for sandbox in _running(external_id_unique=False):
        made = Org(sandbox)
        yield made
        made.connector.session.http.close()
        made.admin.http.close()


def update_op(fields: dict[str, Any], **target: Any) -> Op:
    return Op.plan(
        org_id="acme",
        meeting_id="m-2",
        connector="salesforce",
        connection="acme-salesforce",
        action="update",
        item_key="crm-fields",
        target={"object": "Opportunity", "id": None, "match_emails": [], "rule": "only", **target},
        fields=fields,
    )


# -- describe -----------------------------------------------------------------------
def test_describe_gives_types_lengths_and_picklists(org: Org) -> None:
    schema = org.connector.describe({"object": "Opportunity"})
    stage, next_step = schema.field("StageName"), schema.field("NextStep")
    assert stage is not None and stage.restricted and stage.required
    assert stage.picklist is not None and "Negotiation/Review" in stage.picklist
    assert next_step is not None and next_step.length == 255 and next_step.writable
    closed = schema.field("IsClosed")
    assert closed is not None and not closed.writable


def test_describe_says_which_idempotency_path_a_target_takes(org: Org, keyless: Org) -> None:
    keyed = org.connector.describe({"object": "Task"})
    unkeyed = keyless.connector.describe({"object": "Task"})
    assert "Meetsync_Key__c is an External ID" in keyed.notes[0]
    assert "marker in Subject" in unkeyed.notes[0]


def test_describe_of_a_missing_object_says_it_does_not_exist(org: Org) -> None:
    schema = org.connector.describe({"object": "Nope__c"})
    assert schema.exists is False


# -- checks before writing ----------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "named"),
    [
        pytest.param({"StageName": "Won"}, ["StageName", "'Won'", "Closed Won"], id="picklist"),
        pytest.param({"NextStep": "x" * 300}, ["NextStep", "300 characters", "255"], id="too-long"),
        pytest.param({"Amount": "lots"}, ["Amount", "'lots'", "number"], id="not-a-number"),
        pytest.param({"CloseDate": "soon"}, ["CloseDate", "YYYY-MM-DD"], id="not-a-date"),
        pytest.param({"IsClosed": True}, ["IsClosed", "read-only"], id="read-only"),
        pytest.param({"Colour__c": "red"}, ["Colour__c"], id="unknown-field"),
    ],
)
def test_misfits_are_invalid_mappings_and_nothing_is_written(
    org: Org, fields: dict[str, Any], named: list[str]
) -> None:
    opp = org.id_of("Opportunity", Name="Globex - Analytics Platform")
    with pytest.raises(InvalidMapping) as caught:
        org.connector.apply(update_op(fields, id=opp), None)
    for text in named:
        assert text in str(caught.value)
    patches = [k for k in org.admin.stats()["requests"] if k.startswith("PATCH")]
    assert patches == []


# -- matching ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("emails", "rule", "as_of", "expected"),
    [
        pytest.param(
            ["hank@globex.com"],
            "only",
            None,
            "Globex - Analytics Platform",
            id="one-open-opportunity",
        ),
        pytest.param(
            ["bill@initech.com"],
            "largest_amount",
            None,
            "Initech - Renewal 2027",
            id="largest-amount",
        ),
        pytest.param(
            ["bill@initech.com"],
            "nearest_close_date",
            "2026-11-22",
            "Initech - Renewal 2027",
            id="nearest-close-soon",
        ),
        pytest.param(
            ["peter@initech.com"],
            "nearest_close_date",
            "2027-06-01",
            "Initech - Expansion",
            id="nearest-close-later",
        ),
        pytest.param(
            ["stranger@example.org", "HANK@globex.com"],
            "only",
            None,
            "Globex - Analytics Platform",
            id="unknown-attendee-ignored",
        ),
    ],
)
def test_update_finds_the_opportunity_by_attendees(
    org: Org, emails: list[str], rule: str, as_of: str | None, expected: str
) -> None:
    op = update_op({"NextStep": "Send pricing"}, match_emails=emails, rule=rule, as_of=as_of)
    receipt = org.connector.apply(op, None)
    assert receipt.external_id == org.id_of("Opportunity", Name=expected)
    assert org.one("Opportunity", Name=expected)["NextStep"] == "Send pricing"
    assert receipt.url == (
        f"{org.sandbox.origins['salesforce']}/lightning/r/Opportunity/{receipt.external_id}/view"
    )


@pytest.mark.parametrize(
    ("emails", "rule", "code"),
    [
        pytest.param(["bill@initech.com"], "only", "AMBIGUOUS_MATCH", id="only-with-two"),
        pytest.param(["alice@umbrella-health.com"], "only", "NO_MATCH", id="account-no-opps"),
        pytest.param(["nobody@example.org"], "largest_amount", "NO_MATCH", id="no-contact"),
    ],
)
def test_unresolvable_matches_are_reported_not_guessed(
    org: Org, emails: list[str], rule: str, code: str
) -> None:
    with pytest.raises(Permanent) as caught:
        org.connector.apply(update_op({"NextStep": "x"}, match_emails=emails, rule=rule), None)
    assert caught.value.provider_code == code
    assert all(o["NextStep"] is None for o in org.records()["Opportunity"])


def test_a_lead_matches_its_account_by_company(org: Org) -> None:
    org.admin_post(
        "/_sandbox/records",
        {
            "object": "Lead",
            "fields": {"LastName": "Frink", "Company": "Globex", "Email": "frink@globex-labs.com"},
        },
    )
    op = update_op({"NextStep": "Intro call"}, match_emails=["frink@globex-labs.com"])
    receipt = org.connector.apply(op, None)
    assert receipt.external_id == org.id_of("Opportunity", Name="Globex - Analytics Platform")


def test_find_for_an_update_reports_whether_it_landed(org: Org) -> None:
    op = update_op({"NextStep": "Send pricing", "Amount": 50000}, match_emails=["hank@globex.com"])
    assert org.connector.find(op) is None
    applied = org.connector.apply(op, None)
    found = org.connector.find(op)
    assert found is not None and found.external_id == applied.external_id


# -- upserting activities -----------------------------------------------------------
def test_a_follow_up_task_is_owned_and_linked(org: Org) -> None:
    receipt = org.connector.apply(task_op(), None)
    task = org.one("Task", Id=receipt.external_id)
    assert task["OwnerId"] == org.id_of("User", Email="dana@acme.io")
    assert task["WhoId"] == org.id_of("Contact", Email="hank@globex.com")
    assert task["WhatId"] == org.id_of("Opportunity", Name="Globex - Analytics Platform")
    assert task["AccountId"] == org.id_of("Account", Name="Globex")
    assert receipt.object == "Task" and receipt.extra["created"] is True


def test_the_meeting_is_logged_as_a_completed_task(org: Org) -> None:
    op = task_op(key="meeting-log")
    logged = op.model_copy(
        update={
            "fields": {
                "Subject": "Meeting: Globex pilot review",
                "Status": "Completed",
                "ActivityDate": "2026-11-20",
                "Type": "Meeting",
                "Description": "Summary " * 500,
            }
        }
    )
    receipt = org.connector.apply(logged, None)
    task = org.one("Task", Id=receipt.external_id)
    assert task["IsClosed"] is True and task["Type"] == "Meeting"
    assert len(task["Description"]) == 4000


def test_the_meeting_is_logged_as_an_event(org: Org) -> None:
    op = Op.plan(
        org_id="acme",
        meeting_id="m-1",
        connector="salesforce",
        connection="acme-salesforce",
        action="upsert",
        item_key="meeting-event",
        target={
            "object": "Event",
            "owner_email": "sam@acme.io",
            "who_emails": ["bill@initech.com", "peter@initech.com"],
            "what": {
                "object": "Account",
                "id": None,
                "match_emails": ["bill@initech.com"],
                "rule": "only",
            },
        },
        fields={
            "Subject": "Initech renewal call",
            "StartDateTime": "2026-11-20T15:00:00Z",
            "EndDateTime": "2026-11-20T15:45:00Z",
        },
    )
    first = org.connector.apply(op, None)
    again = org.connector.apply(op, first)
    event = org.one("Event", Id=first.external_id)
    assert again.external_id == first.external_id and len(org.records()["Event"]) == 1
    assert event["DurationInMinutes"] == 45
    assert event["WhatId"] == org.id_of("Account", Name="Initech")
    assert event["WhoId"] == org.id_of("Contact", Email="bill@initech.com")


def test_a_lead_attendee_becomes_the_who(org: Org) -> None:
    lead = org.admin_post(
        "/_sandbox/records",
        {
            "object": "Lead",
            "fields": {"LastName": "Bighead", "Company": "Hooli", "Email": "nelson@hooli.com"},
        },
    )
    op = task_op(who_emails=["nelson@hooli.com"], what=None)
    receipt = org.connector.apply(op, None)
    assert org.one("Task", Id=receipt.external_id)["WhoId"] == lead["Id"]


def test_an_optional_what_that_does_not_match_leaves_the_task_unlinked(org: Org) -> None:
    op = task_op(
        what={
            "object": "Opportunity",
            "match_emails": ["nobody@example.org"],
            "rule": "only",
            "required": False,
        }
    )
    receipt = org.connector.apply(op, None)
    assert org.one("Task", Id=receipt.external_id)["WhatId"] is None
    assert receipt.extra["unlinked"].startswith("NO_MATCH")


def test_an_owner_who_is_not_a_user_is_no_match(org: Org) -> None:
    with pytest.raises(Permanent) as caught:
        org.connector.apply(task_op(owner_email="contractor@example.org"), None)
    assert caught.value.provider_code == "NO_MATCH"
    assert org.records()["Task"] == []


def test_the_key_is_url_encoded_in_the_upsert_path(org: Org) -> None:
    op = task_op().model_copy(update={"key": "org/42 meeting#7"})
    org.connector.apply(op, None)
    assert org.one("Task", Meetsync_Key__c="org/42 meeting#7")["Subject"]


# -- provider errors ----------------------------------------------------------------
def test_a_validation_rule_is_permanent_with_the_orgs_message(org: Org) -> None:
    org.admin_post(
        "/_sandbox/validation_rules",
        {
            "rules": [
                {
                    "object": "Task",
                    "field": "ActivityDate",
                    "message": "Follow-ups need a due date",
                    "when": [{"field": "ActivityDate", "op": "blank"}],
                }
            ]
        },
    )
    op = task_op().model_copy(update={"fields": {"Subject": "No date"}})
    with pytest.raises(Permanent) as caught:
        org.connector.apply(op, None)
    assert caught.value.provider_code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert caught.value.message == "Follow-ups need a due date"


def test_the_daily_limit_is_rate_limited_for_an_hour(org: Org) -> None:
    org.admin_post("/_sandbox/limits", {"used": 5, "limit": 5})
    with pytest.raises(RateLimited) as caught:
        org.connector.apply(task_op(), None)
    assert caught.value.provider_code == "REQUEST_LIMIT_EXCEEDED"
    assert caught.value.retry_after == 3600


def test_api_usage_is_exposed_for_throttling(org: Org) -> None:
    org.admin_post("/_sandbox/limits", {"used": 41, "limit": 5000})
    org.connector.describe({"object": "Task"})
    assert org.connector.api_usage == (42, 5000)


def test_several_records_on_one_key_is_permanent(shared_key: Org) -> None:
    op = task_op()
    for _ in range(2):
        shared_key.admin_post(
            "/_sandbox/records",
            {"object": "Task", "fields": {"Subject": "twin", "Meetsync_Key__c": op.key}},
        )
    with pytest.raises(Permanent) as caught:
        shared_key.connector.apply(op, None)
    assert caught.value.provider_code == "DUPLICATE_EXTERNAL_ID"


def test_an_unknown_action_is_an_invalid_mapping(org: Org) -> None:
    with pytest.raises(InvalidMapping):
        org.connector.apply(task_op().model_copy(update={"action": "post_message"}), None)


# -- orgs without the External ID field ---------------------------------------------
def _held(org: Org, op: Op) -> list[dict[str, Any]]:
    return [t for t in org.records()["Task"] if marker(op) in (t["Subject"] or "")]


def test_without_the_key_field_a_marker_in_subject_keeps_writes_single(keyless: Org) -> None:
    first = keyless.connector.apply(task_op("a"), None)
    again = keyless.connector.apply(task_op("a"), None)  # the ledger lost the receipt
    changed = keyless.connector.apply(task_op("b"), first)
    held = _held(keyless, task_op())
    assert first.external_id == again.external_id == changed.external_id
    assert [t["Subject"] for t in held] == [
        f"Send the revised pilot SOW to Globex {marker(task_op())}"
    ]


def test_without_the_key_field_a_lost_response_is_found(keyless: Org) -> None:
    op = task_op()
    keyless.admin.arm("lost_response", method="POST", path="/services/data/v62.0/sobjects/Task")
    with pytest.raises(Transient):
        keyless.connector.apply(op, None)
    found = keyless.connector.find(op)
    assert isinstance(found, Receipt)
    assert keyless.connector.apply(op, found).external_id == found.external_id
    assert len(_held(keyless, op)) == 1


def test_without_the_key_field_a_subject_too_long_for_the_marker_is_refused(keyless: Org) -> None:
    op = task_op().model_copy(update={"fields": {"Subject": "x" * 250}})
    with pytest.raises(InvalidMapping) as caught:
        keyless.connector.apply(op, None)
    assert caught.value.provider_code == "STRING_TOO_LONG"
    assert keyless.records()["Task"] == []


# -- JWT bearer ----------------------------------------------------------------------
def _private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture(scope="module")
def app_key() -> rsa.RSAPrivateKey:
    """The connected app's key; its public half is the certificate uploaded to the org."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwt_sandbox(app_key: rsa.RSAPrivateKey) -> Iterator[Sandbox]:
    public = app_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    yield from _running(jwt_public_key=public.decode())


@pytest.fixture
def jwt_org(jwt_sandbox: Sandbox) -> Iterator[Org]:
    made = Org(jwt_sandbox)
    yield made
    made.connector.session.http.close()
    made.admin.http.close()


def _jwt_connector(org: Org, username: str, key: rsa.RSAPrivateKey) -> SalesforceConnector:
    config = connection(org.sandbox)
    credentials = {
        "client_id": DEFAULTS["client_id"],
        "username": username,
        "private_key": _private_pem(key),
    }
    org.connector = SalesforceConnector(config.model_copy(update={"credentials": credentials}))
    return org.connector


def test_jwt_bearer_acts_as_the_named_user(jwt_org: Org, app_key: rsa.RSAPrivateKey) -> None:
    connector = _jwt_connector(jwt_org, "dana@acme.io", app_key)
    receipt = connector.apply(task_op(key="jwt", owner_email=None), None)
    task = jwt_org.one("Task", Id=receipt.external_id)
    assert task["CreatedById"] == task["OwnerId"] == jwt_org.id_of("User", Email="dana@acme.io")


@pytest.mark.parametrize(
    ("username", "own_key"),
    [
        pytest.param("ghost@acme.io", True, id="unknown-user"),
        pytest.param("dana@acme.io", False, id="key-the-org-does-not-know"),
    ],
)
def test_jwt_bearer_refused_is_auth_expired(
    jwt_org: Org, app_key: rsa.RSAPrivateKey, username: str, own_key: bool
) -> None:
    key = app_key if own_key else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    connector = _jwt_connector(jwt_org, username, key)
    with pytest.raises(AuthExpired) as caught:
        connector.apply(task_op(), None)
    assert caught.value.provider_code == "invalid_grant"


# -- write policies -------------------------------------------------------------------
def person_edits(org: Org, obj: str, record_id: str, **fields: Any) -> None:
    """A person changes a record through the REST API, as they would in the UI."""
    org.connector.session.rest("PATCH", f"sobjects/{obj}/{record_id}", fields)


@pytest.mark.parametrize(
    ("emails", "opportunity", "amount", "skipped"),
    [
        pytest.param(["hank@globex.com"], "Globex - Analytics Platform", 80000.0, {}, id="empty"),
        pytest.param(
            ["bill@initech.com"],
            "Initech - Renewal 2027",
            120000.0,
            {"Amount": HELD},
            id="held",
        ),
    ],
)
def test_if_empty_writes_only_into_an_empty_field(
    org: Org, emails: list[str], opportunity: str, amount: float, skipped: dict[str, str]
) -> None:
    # given an update whose Amount may only fill a blank
    op = update_op(
        {"Amount": 80000, "NextStep": "Send pricing"},
        match_emails=emails,
        rule="nearest_close_date",
        write_policy={"Amount": "if_empty"},
    )
    # when it is applied
    receipt = org.connector.apply(op, None)
    # expect Amount written only where there was none, NextStep always, skips reported
    record = org.one("Opportunity", Name=opportunity)
    assert record["Amount"] == amount and record["NextStep"] == "Send pricing"
    assert receipt.extra.get("skipped", {}) == skipped


def test_unless_edited_keeps_a_persons_change_across_reapplies(org: Org) -> None:
    # given a close date meetsync wrote, then a person changed
    def op(close: str) -> Op:
        return update_op(
            {"CloseDate": close, "NextStep": f"Sign by {close}"},
            match_emails=["hank@globex.com"],
            write_policy={"CloseDate": "unless_edited"},
        )

    first = org.connector.apply(op("2027-04-30"), None)
    person_edits(org, "Opportunity", first.external_id, CloseDate="2027-05-15")
    # when the meeting is re-applied with another close date, twice
    second = org.connector.apply(op("2027-06-30"), first)
    third = org.connector.apply(op("2027-07-31"), second)
    # expect the person's date kept both times, the other field written, the skip reported
    record = org.one("Opportunity", Id=first.external_id)
    assert record["CloseDate"] == "2027-05-15" and record["NextStep"] == "Sign by 2027-07-31"
    assert second.extra["skipped"] == third.extra["skipped"] == {"CloseDate": EDITED}


def test_unless_edited_updates_a_value_nobody_touched(org: Org) -> None:
    # given a close date meetsync wrote and nobody changed
    def op(close: str) -> Op:
        return update_op(
            {"CloseDate": close},
            match_emails=["hank@globex.com"],
            write_policy={"CloseDate": "unless_edited"},
        )

    first = org.connector.apply(op("2027-04-30"), None)
    # when a re-run says another date
    second = org.connector.apply(op("2027-06-30"), first)
    # expect the new date, nothing skipped
    assert org.one("Opportunity", Id=first.external_id)["CloseDate"] == "2027-06-30"
    assert "skipped" not in second.extra


def test_a_reapplied_task_keeps_the_status_a_person_set(org: Org) -> None:
    # given a follow-up Task whose Status a person moved on after meetsync created it
    policy: dict[str, Any] = {"write_policy": {"Status": "unless_edited"}}
    first = org.connector.apply(task_op("a", **policy), None)
    person_edits(org, "Task", first.external_id, Status="Completed")
    # when the re-worded item is re-applied
    second = org.connector.apply(task_op("b", **policy), first)
    # expect the rewording written and the person's Status kept
    task = org.one("Task", Id=first.external_id)
    assert task["Subject"] == "Send the revised pilot SOW to Globex"
    assert task["Status"] == "Completed"
    assert second.extra["skipped"] == {"Status": EDITED}


# -- one push's ops together ----------------------------------------------------------
def _queries(org: Org) -> int:
    requests = org.admin.stats()["requests"]
    return sum(n for endpoint, n in requests.items() if endpoint.endswith("/query/"))


def test_one_pushs_ops_ask_each_lookup_once_and_the_next_push_asks_again(org: Org) -> None:
    # given a meeting's follow-up task and its opportunity update, matching one attendee,
    # written once one by one (the owner's user lookup is then cached for minutes)
    update = update_op({"NextStep": "Send pricing"}, match_emails=["hank@globex.com"])
    before = _queries(org)
    org.connector.apply(task_op(key="alone"), None)
    org.connector.apply(update, None)
    separately = _queries(org) - before

    # when the same two are written in one push, then the update alone in the next
    before = _queries(org)
    task = task_op(key="together")
    changed = update.model_copy(update={"payload_hash": "changed"})
    outcomes = org.connector.apply_many([(task, None), (changed, None)])
    together = _queries(org) - before
    before = _queries(org)
    again = org.connector.apply(update.model_copy(update={"payload_hash": "again"}), None)
    next_push = _queries(org) - before

    # expect both written as `apply` writes them, the attendee and opportunity asked once
    written, updated = outcomes
    assert isinstance(written, Receipt) and isinstance(updated, Receipt)
    opportunity = org.id_of("Opportunity", Name="Globex - Analytics Platform")
    assert org.one("Task", Id=written.external_id)["WhatId"] == opportunity
    assert updated.external_id == opportunity == again.external_id
    assert together <= separately - 2
    # and nothing is remembered past its push: the next one asks Salesforce again
    assert next_push >= 2


def test_a_429_in_one_push_leaves_the_ops_after_it_unsent(org: Org) -> None:
    org.sandbox.providers["salesforce"].faults.clear()
    org.admin.arm("throttle", method="PATCH", path="/services/data", retry_after=5)
    first = task_op(key="first-item")
    second = task_op(key="second-item")
    outcomes = org.connector.apply_many([(first, None), (second, None)])
    assert isinstance(outcomes[0], RateLimited) and outcomes[1] is None
    assert not [t for t in org.records()["Task"] if t.get("Meetsync_Key__c")]
