"""Salesforce refuses what a real org refuses, through simple-salesforce, and the connector
turns each refusal into the error that says what to do, with Salesforce's own words."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.errors import InvalidMapping, Permanent, Transient
from connectors.salesforce import SalesforceConnector
from sandbox.client import SandboxClient
from sandbox.server import Sandbox
from tests.contract.case_salesforce import API_VERSION, admin_client, connection, task_op

TASKS = f"/services/data/v{API_VERSION}/sobjects/Task"


@pytest.fixture(scope="module")
def sf() -> Iterator[Sandbox]:
    # a tiny query batch (real orgs: 200-2000) so pagination shows with a few records
    options = {"salesforce": {"query_batch_size": 2}}
    with Sandbox(only=["salesforce"], options=options) as running:
        yield running
        gc.collect()


@pytest.fixture
def admin(sf: Sandbox) -> Iterator[SandboxClient]:
    sf.reset()
    client = admin_client(sf)
    client.clear_faults()
    yield client
    client.clear_faults()
    client.http.close()


@pytest.fixture
def connector(sf: Sandbox, admin: SandboxClient) -> Iterator[SalesforceConnector]:
    made = SalesforceConnector(connection(sf))
    yield made
    made.session.http.close()


def _records(admin: SandboxClient, obj: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = admin.state()["records"][obj]
    return rows


# -- upsert: the External ID belongs in the URL only ---------------------------------------
def test_an_upsert_body_carrying_the_external_id_is_refused(
    connector: SalesforceConnector,
) -> None:
    path = "sobjects/Task/Meetsync_Key__c/k-1"
    body = {"Subject": "Call back", "Meetsync_Key__c": "k-1"}
    with pytest.raises(InvalidMapping) as caught:
        connector.session.rest("PATCH", path, body)
    assert caught.value.provider_code == "INVALID_FIELD"
    assert "Meetsync_Key__c field should not be specified" in str(caught.value)


def test_the_connector_keeps_the_external_id_out_of_the_body(
    connector: SalesforceConnector, admin: SandboxClient
) -> None:
    op = task_op()
    op = op.model_copy(update={"fields": {**op.fields, "Meetsync_Key__c": "from-a-mapping"}})
    connector.apply(op, None)
    (task,) = [t for t in _records(admin, "Task") if t["Subject"] == op.fields["Subject"]]
    assert task["Meetsync_Key__c"] == op.key


# -- SOQL string escapes --------------------------------------------------------------------
def test_an_illegal_escape_is_malformed_query(connector: SalesforceConnector) -> None:
    with pytest.raises(Permanent) as caught:
        connector.session.query("SELECT Id FROM Contact WHERE LastName = 'O\\qBrien'")
    assert caught.value.provider_code == "MALFORMED_QUERY"
    assert "Illegal character sequence '\\q'" in str(caught.value)


@pytest.mark.parametrize(
    ("stored", "literal"),
    [
        pytest.param("Back\bspace", "Back\\bspace", id="backspace"),
        pytest.param("Form\ffeed", "Form\\Ffeed", id="formfeed-upper"),
        pytest.param("Renée", "Ren\\u00e9e", id="unicode"),
        pytest.param("O'Brien", "O\\'Brien", id="quote"),
        pytest.param("a\\b", "a\\\\b", id="backslash"),
    ],
)
def test_legal_escapes_find_what_they_spell(
    connector: SalesforceConnector, admin: SandboxClient, stored: str, literal: str
) -> None:
    admin.http.post(
        "/_sandbox/records", json={"object": "Contact", "fields": {"LastName": stored}}
    ).raise_for_status()
    rows = connector.session.query(f"SELECT Id FROM Contact WHERE LastName = '{literal}'")
    assert len(rows) == 1


# -- records owned by a deactivated user ----------------------------------------------------
def test_a_task_owned_by_an_inactive_user_cannot_be_saved(
    connector: SalesforceConnector, admin: SandboxClient
) -> None:
    receipt = connector.apply(task_op("a"), None)
    admin.http.post(
        "/_sandbox/users", json={"email": "dana@acme.io", "active": False}
    ).raise_for_status()
    # the owner is the cached (then inactive) Dana: Salesforce refuses the edit
    with pytest.raises(Permanent) as caught:
        connector.apply(task_op("b"), receipt)
    assert caught.value.provider_code == "INACTIVE_OWNER_OR_USER"
    assert "inactive user" in str(caught.value)


# -- faults a trigger, a flow or row locking cause -------------------------------------------
def test_row_lock_contention_is_transient(
    connector: SalesforceConnector, admin: SandboxClient
) -> None:
    admin.arm("error", path=TASKS, status=400, code="UNABLE_TO_LOCK_ROW")
    with pytest.raises(Transient) as caught:
        connector.apply(task_op(), None)
    assert caught.value.provider_code == "UNABLE_TO_LOCK_ROW"
    connector.apply(task_op(), None)  # the retry goes through
    assert len(_records(admin, "Task")) == 1


def test_a_flow_refusing_the_write_is_permanent_with_the_flows_message(
    connector: SalesforceConnector, admin: SandboxClient
) -> None:
    admin.arm("error", path=TASKS, status=400, code="CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY")
    with pytest.raises(Permanent) as caught:
        connector.apply(task_op(), None)
    assert caught.value.provider_code == "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY"
    assert "Tasks from meetings need a Type" in str(caught.value)


# -- duplicate rules ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("obj", "fields", "match"),
    [
        pytest.param("Contact", {"LastName": "Hill", "Email": "HANK@globex.com"}, ["Email"],
                     id="contact"),
        pytest.param("Account", {"Name": "globex"}, ["Name"], id="account"),
    ],
)  # fmt: skip
def test_a_duplicate_rule_refuses_a_second_record(
    connector: SalesforceConnector,
    admin: SandboxClient,
    obj: str,
    fields: dict[str, Any],
    match: list[str],
) -> None:
    rule = {"rules": [{"object": obj, "match": match}]}
    admin.http.post("/_sandbox/duplicate_rules", json=rule).raise_for_status()
    existing = [r for r in _records(admin, obj) if r[match[0]]]
    fields = {**fields, match[0]: str(existing[0][match[0]]).upper()}
    with pytest.raises(Permanent) as caught:
        connector.session.rest("POST", f"sobjects/{obj}", fields)
    assert caught.value.provider_code == "DUPLICATES_DETECTED"
    assert "Use one of these records?" in str(caught.value)


def test_without_a_duplicate_rule_the_same_email_is_allowed(
    connector: SalesforceConnector,
) -> None:
    result = connector.session.rest(
        "POST", "sobjects/Contact", {"LastName": "Hill", "Email": "hank@globex.com"}
    )
    assert result["success"]


# -- query pagination --------------------------------------------------------------------------
def test_query_results_page_with_next_records_url(connector: SalesforceConnector) -> None:
    first = connector.session.call(lambda sf: sf.query("SELECT Id FROM User"))
    assert first["done"] is False and len(first["records"]) == 2
    assert first["nextRecordsUrl"].startswith(f"/services/data/v{API_VERSION}/query/")
    every = connector.session.query("SELECT Id FROM User")
    assert len(every) == first["totalSize"] > 2
    assert len({r["Id"] for r in every}) == len(every)


def test_a_query_locator_is_used_once(connector: SalesforceConnector) -> None:
    first = connector.session.call(lambda sf: sf.query("SELECT Id FROM User"))
    locator = first["nextRecordsUrl"]
    connector.session.call(lambda sf: sf.query_more(locator, identifier_is_url=True))
    with pytest.raises(Permanent) as caught:
        connector.session.call(lambda sf: sf.query_more(locator, identifier_is_url=True))
    assert caught.value.provider_code == "INVALID_QUERY_LOCATOR"
