"""The Salesforce emulator on the wire: OAuth, errors, describe, upsert, SOQL, collections."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sandbox.salesforce.auth import DEFAULTS
from sandbox.salesforce.ids import make_id
from sandbox.server import Sandbox
from tests.contract.case_salesforce import admin_client

V = "/services/data/v62.0"


class Org:
    """A raw HTTP client for one emulated org, logged in with the refresh-token grant."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.origin = sandbox.origins["salesforce"]
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.verify = sandbox.ca_file
        self.admin = admin_client(sandbox)
        self.token = self.grant().json()["access_token"]

    def close(self) -> None:
        self.http.close()
        self.admin.http.close()

    def grant(self, **overrides: str) -> requests.Response:
        form = {"grant_type": "refresh_token", **DEFAULTS, **overrides}
        return self.http.post(f"{self.origin}/services/oauth2/token", data=form)

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return self.http.request(method, f"{self.origin}{V}/{path}", headers=headers, **kwargs)

    def query(self, soql: str) -> requests.Response:
        return self.call("GET", "query", params={"q": soql})

    def field(self, obj: str, name: str) -> dict[str, Any]:
        fields = self.call("GET", f"sobjects/{obj}/describe").json()["fields"]
        return next(f for f in fields if f["name"] == name)

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
    client = Org(sf_sandbox)
    yield client
    client.close()


@pytest.fixture(scope="module")
def keyless_org() -> Iterator[Org]:
    for sandbox in _running(external_id_field=False):
        client = Org(sandbox)
        yield client
        client.close()


@pytest.fixture(scope="module")
def shared_key_org() -> Iterator[Org]:
    for sandbox in _running(external_id_unique=False):
        client = Org(sandbox)
        yield client
        client.close()


def _error(response: requests.Response) -> dict[str, Any]:
    body = response.json()
    assert isinstance(body, list), "Salesforce error bodies are JSON arrays"
    first: dict[str, Any] = body[0]
    return first


# -- OAuth and sessions -------------------------------------------------------------
def test_refresh_grant_returns_a_session_for_the_instance(org: Org) -> None:
    body = org.grant().json()
    assert body["instance_url"] == org.origin
    assert body["token_type"] == "Bearer"
    assert {"access_token", "issued_at", "signature", "id"} <= set(body)


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        pytest.param({"refresh_token": "nope"}, "invalid_grant", id="bad-refresh-token"),
        pytest.param({"client_id": "nope"}, "invalid_client_id", id="bad-client-id"),
        pytest.param({"client_secret": "nope"}, "invalid_client", id="bad-secret"),
        pytest.param({"grant_type": "password"}, "unsupported_grant_type", id="bad-grant"),
    ],
)
def test_bad_grants_are_oauth_errors(org: Org, overrides: dict[str, str], error: str) -> None:
    response = org.grant(**overrides)
    assert response.status_code == 400
    assert response.json()["error"] == error


def test_unknown_token_is_invalid_session(org: Org) -> None:
    org.token = "00Dxx!forged"
    response = org.call("GET", "limits")
    assert response.status_code == 401
    assert _error(response)["errorCode"] == "INVALID_SESSION_ID"
    assert _error(response)["message"] == "Session expired or invalid"


def test_expire_ends_access_tokens_but_refresh_still_works(org: Org) -> None:
    org.admin_post("/_sandbox/auth", {"action": "expire"})
    assert org.call("GET", "limits").status_code == 401
    org.token = org.grant().json()["access_token"]
    assert org.call("GET", "limits").status_code == 200


def test_revoke_kills_the_refresh_token_until_restored(org: Org) -> None:
    org.admin_post("/_sandbox/auth", {"action": "revoke"})
    refused = org.grant()
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "invalid_grant",
        "error_description": "expired access/refresh token",
    }
    org.admin_post("/_sandbox/auth", {"action": "restore"})
    assert org.grant().status_code == 200


# -- limits -------------------------------------------------------------------------
def test_every_response_counts_against_the_daily_limit(org: Org) -> None:
    first = org.call("GET", "limits").headers["Sforce-Limit-Info"]
    second = org.call("GET", "sobjects/Nope/describe").headers["Sforce-Limit-Info"]
    assert first == "api-usage=1/100000"
    assert second == "api-usage=2/100000"


def test_past_the_daily_limit_requests_are_refused(org: Org) -> None:
    org.admin_post("/_sandbox/limits", {"used": 10, "limit": 10})
    response = org.call("GET", "limits")
    assert response.status_code == 403
    assert _error(response)["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert response.headers["Sforce-Limit-Info"] == "api-usage=10/10"


def test_injected_faults_look_like_salesforce(org: Org) -> None:
    org.admin.arm("error", status=429, retry_after=7, path=f"{V}/query")
    org.admin.arm("error", status=503, path=f"{V}/limits")
    throttled = org.query("SELECT Id FROM Account")
    down = org.call("GET", "limits")
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "7"
    assert _error(throttled)["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert down.status_code == 503 and _error(down)["errorCode"] == "SERVER_UNAVAILABLE"


# -- describe -----------------------------------------------------------------------
def test_stage_is_a_restricted_picklist_of_the_standard_stages(org: Org) -> None:
    stage = org.field("Opportunity", "StageName")
    values = [p["value"] for p in stage["picklistValues"]]
    assert stage["type"] == "picklist" and stage["restrictedPicklist"] is True
    assert values[0] == "Prospecting" and values[-2:] == ["Closed Won", "Closed Lost"]
    assert len(values) == 10


@pytest.mark.parametrize(
    ("obj", "name", "expected"),
    [
        pytest.param("Opportunity", "NextStep", {"type": "string", "length": 255}, id="next-step"),
        pytest.param("Opportunity", "Amount", {"type": "currency"}, id="amount"),
        pytest.param("Opportunity", "CloseDate", {"type": "date", "nillable": False}, id="close"),
        pytest.param(
            "Task",
            "Description",
            {"type": "textarea", "length": 32000, "filterable": False},
            id="description",
        ),
        pytest.param(
            "Task",
            "Priority",
            {"restrictedPicklist": True, "defaultedOnCreate": True},
            id="priority",
        ),
        pytest.param(
            "Task",
            "WhatId",
            {"type": "reference", "referenceTo": ["Account", "Opportunity"]},
            id="what",
        ),
        pytest.param(
            "Task",
            "Meetsync_Key__c",
            {"externalId": True, "unique": True, "length": 64, "custom": True},
            id="key",
        ),
        pytest.param("Event", "Meetsync_Key__c", {"externalId": True}, id="event-key"),
    ],
)
def test_describe_reports_field_metadata(
    org: Org, obj: str, name: str, expected: dict[str, Any]
) -> None:
    field = org.field(obj, name)
    assert {k: field[k] for k in expected} == expected


def test_the_external_id_field_can_be_left_out(keyless_org: Org) -> None:
    fields = keyless_org.call("GET", "sobjects/Task/describe").json()["fields"]
    assert "Meetsync_Key__c" not in {f["name"] for f in fields}
    assert "Subject" in {f["name"] for f in fields}


# -- writes -------------------------------------------------------------------------
def test_create_read_update_delete_a_task(org: Org) -> None:
    created = org.call("POST", "sobjects/Task", json={"Subject": "Call Hank"})
    task_id = created.json()["id"]
    assert created.status_code == 201 and created.json()["success"] is True
    assert len(task_id) == 18 and task_id.startswith("00T")
    assert (
        org.call("PATCH", f"sobjects/Task/{task_id}", json={"Status": "Completed"}).status_code
        == 204
    )
    task = org.call("GET", f"sobjects/Task/{task_id}").json()
    assert task["Status"] == "Completed" and task["IsClosed"] is True
    assert task["Priority"] == "Normal"  # defaulted on create
    assert org.call("DELETE", f"sobjects/Task/{task_id}").status_code == 204
    assert org.call("GET", f"sobjects/Task/{task_id}").status_code == 404


@pytest.mark.parametrize(
    ("obj", "body", "code", "fields"),
    [
        pytest.param("Task", {"Subject": "x" * 256}, "STRING_TOO_LONG", ["Subject"], id="too-long"),
        pytest.param(
            "Task",
            {"Status": "Done"},
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            ["Status"],
            id="picklist",
        ),
        pytest.param(
            "Opportunity",
            {"Name": "x", "StageName": "Prospecting"},
            "REQUIRED_FIELD_MISSING",
            ["CloseDate"],
            id="required",
        ),
        pytest.param(
            "Task", {"WhatId": "not-an-id"}, "MALFORMED_ID", ["WhatId"], id="malformed-id"
        ),
        pytest.param(
            "Task", {"WhatId": "006Dn0000000ZZZIAA"}, "MALFORMED_ID", ["WhatId"], id="bad-checksum"
        ),
        pytest.param(
            "Task",
            {"OwnerId": make_id("005", 999_999)},
            "INVALID_CROSS_REFERENCE_KEY",
            ["OwnerId"],
            id="unknown-id",
        ),
        pytest.param(
            "Task", {"ActivityDate": "next tuesday"}, "JSON_PARSER_ERROR", [], id="bad-date"
        ),
        pytest.param(
            "Task",
            {"IsClosed": True},
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            ["IsClosed"],
            id="read-only",
        ),
        pytest.param("Task", {"Nope__c": 1}, "INVALID_FIELD", [], id="unknown-field"),
    ],
)
def test_invalid_writes_are_refused(
    org: Org, obj: str, body: dict[str, Any], code: str, fields: list[str]
) -> None:
    response = org.call("POST", f"sobjects/{obj}", json=body)
    assert response.status_code == 400
    assert _error(response)["errorCode"] == code
    assert _error(response)["fields"] == fields


def test_a_lead_cannot_be_related_to_an_opportunity(org: Org) -> None:
    lead = org.admin_post(
        "/_sandbox/records",
        {
            "object": "Lead",
            "fields": {"LastName": "Lee", "Company": "Hooli", "Email": "gavin@hooli.com"},
        },
    )
    opp = org.query("SELECT Id FROM Opportunity LIMIT 1").json()["records"][0]["Id"]
    response = org.call("POST", "sobjects/Task", json={"WhoId": lead["Id"], "WhatId": opp})
    assert _error(response)["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"


def test_an_event_needs_a_time_and_derives_its_end(org: Org) -> None:
    missing = org.call("POST", "sobjects/Event", json={"Subject": "Sync"})
    made = org.call(
        "POST",
        "sobjects/Event",
        json={"Subject": "Sync", "StartDateTime": "2026-11-20T15:00:00Z", "DurationInMinutes": 30},
    )
    event = org.call("GET", f"sobjects/Event/{made.json()['id']}").json()
    assert _error(missing)["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert event["EndDateTime"] == "2026-11-20T15:30:00.000+0000"
    assert event["ActivityDate"] == "2026-11-20"


# -- upsert by External ID ----------------------------------------------------------
def test_upsert_creates_then_updates(org: Org) -> None:
    path = "sobjects/Task/Meetsync_Key__c/k-1"
    created = org.call("PATCH", path, json={"Subject": "First"})
    updated = org.call("PATCH", path, json={"Subject": "Second"})
    assert created.status_code == 201 and created.json()["created"] is True
    assert updated.status_code == 200 and updated.json()["created"] is False
    assert updated.json()["id"] == created.json()["id"]
    tasks = org.admin.state()["records"]["Task"]
    assert [t["Subject"] for t in tasks if t["Meetsync_Key__c"] == "k-1"] == ["Second"]


def test_upsert_update_before_api_46_is_a_bare_204(org: Org) -> None:
    org.call("PATCH", "sobjects/Task/Meetsync_Key__c/k-2", json={"Subject": "First"})
    old = org.http.patch(
        f"{org.origin}/services/data/v45.0/sobjects/Task/Meetsync_Key__c/k-2",
        json={"Subject": "Again"},
        headers={"Authorization": f"Bearer {org.token}"},
    )
    assert old.status_code == 204 and old.content == b""


def test_upsert_on_a_field_that_is_not_an_external_id_is_not_found(org: Org) -> None:
    response = org.call("PATCH", "sobjects/Task/Subject/hello", json={"Status": "Completed"})
    assert response.status_code == 404
    assert _error(response)["errorCode"] == "NOT_FOUND"


def test_upsert_value_is_url_decoded(org: Org) -> None:
    org.call("PATCH", "sobjects/Task/Meetsync_Key__c/a%2Fb%20c", json={"Subject": "Slash"})
    keys = {t["Meetsync_Key__c"] for t in org.admin.state()["records"]["Task"]}
    assert "a/b c" in keys


def test_a_unique_key_refuses_a_second_record(org: Org) -> None:
    org.call("POST", "sobjects/Task", json={"Meetsync_Key__c": "dup"})
    second = org.call("POST", "sobjects/Task", json={"Meetsync_Key__c": "dup"})
    assert _error(second)["errorCode"] == "DUPLICATE_VALUE"


def test_upsert_with_several_matches_answers_300_with_their_urls(shared_key_org: Org) -> None:
    made = [
        shared_key_org.call("POST", "sobjects/Task", json={"Meetsync_Key__c": "twice"})
        for _ in range(2)
    ]
    response = shared_key_org.call(
        "PATCH", "sobjects/Task/Meetsync_Key__c/twice", json={"Subject": "Which one?"}
    )
    assert response.status_code == 300
    assert sorted(response.json()) == sorted(f"{V}/sobjects/Task/{m.json()['id']}" for m in made)


# -- SOQL ---------------------------------------------------------------------------
def test_query_filters_orders_and_limits(org: Org) -> None:
    response = org.query(
        "SELECT Id, Name, Amount FROM Opportunity WHERE IsClosed = false "
        "AND StageName IN ('Prospecting', 'Negotiation/Review') ORDER BY CloseDate DESC LIMIT 1"
    )
    body = response.json()
    assert body["totalSize"] == 1 and body["done"] is True
    assert body["records"][0]["Name"] == "Initech - Expansion"
    assert body["records"][0]["attributes"]["type"] == "Opportunity"


def test_query_string_equality_ignores_case(org: Org) -> None:
    rows = org.query("SELECT Id, Email FROM Contact WHERE Email = 'HANK@Globex.com'").json()
    assert [r["Email"] for r in rows["records"]] == ["hank@globex.com"]


def test_query_like_with_a_leading_wildcard(org: Org) -> None:
    org.call("POST", "sobjects/Task", json={"Subject": "Send SOW [ms:abc123]"})
    rows = org.query("SELECT Subject FROM Task WHERE Subject LIKE '%[ms:abc123]'").json()
    assert [r["Subject"] for r in rows["records"]] == ["Send SOW [ms:abc123]"]


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        pytest.param(
            "SELECT Id FROM Task WHERE Description = 'x'",
            "INVALID_FIELD",
            id="long-text-not-filterable",
        ),
        pytest.param("SELECT Nope FROM Task", "INVALID_FIELD", id="unknown-column"),
        pytest.param("SELECT Id FROM Nope", "INVALID_TYPE", id="unknown-object"),
        pytest.param("SELECT FROM Task", "MALFORMED_QUERY", id="malformed"),
    ],
)
def test_bad_queries_are_refused(org: Org, soql: str, code: str) -> None:
    response = org.query(soql)
    assert response.status_code == 400
    assert _error(response)["errorCode"] == code


# -- sObject Collections ------------------------------------------------------------
def _collection(org: Org, all_or_none: bool) -> list[dict[str, Any]]:
    records = [
        {"attributes": {"type": "Task"}, "Subject": "Good"},
        {"attributes": {"type": "Task"}, "Status": "Bogus"},
    ]
    response = org.call(
        "POST", "composite/sobjects", json={"allOrNone": all_or_none, "records": records}
    )
    assert response.status_code == 200
    result: list[dict[str, Any]] = response.json()
    return result


def test_collection_without_all_or_none_keeps_the_good_records(org: Org) -> None:
    results = _collection(org, all_or_none=False)
    assert results[0]["success"] is True
    assert results[1]["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert [t["Subject"] for t in org.admin.state()["records"]["Task"]] == ["Good"]


def test_collection_with_all_or_none_rolls_everything_back(org: Org) -> None:
    results = _collection(org, all_or_none=True)
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[1]["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert org.admin.state()["records"]["Task"] == []


def test_collection_upsert_reports_created_per_record(org: Org) -> None:
    org.call("PATCH", "sobjects/Task/Meetsync_Key__c/old", json={"Subject": "Old"})
    records = [
        {"attributes": {"type": "Task"}, "Meetsync_Key__c": key, "Subject": key}
        for key in ("old", "new")
    ]
    response = org.call(
        "PATCH",
        "composite/sobjects/Task/Meetsync_Key__c",
        json={"allOrNone": True, "records": records},
    )
    assert [r["created"] for r in response.json()] == [False, True]


# -- validation rules ---------------------------------------------------------------
def test_a_validation_rule_refuses_a_write(org: Org) -> None:
    org.admin_post(
        "/_sandbox/validation_rules",
        {
            "rules": [
                {
                    "object": "Opportunity",
                    "field": "NextStep",
                    "message": "Next Step is required in Negotiation",
                    "when": [
                        {"field": "StageName", "op": "eq", "value": "Negotiation/Review"},
                        {"field": "NextStep", "op": "blank"},
                    ],
                }
            ]
        },
    )
    opp = org.query("SELECT Id FROM Opportunity WHERE StageName = 'Prospecting'").json()
    response = org.call(
        "PATCH",
        f"sobjects/Opportunity/{opp['records'][0]['Id']}",
        json={"StageName": "Negotiation/Review"},
    )
    assert _error(response) == {
        "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "message": "Next Step is required in Negotiation",
        "fields": ["NextStep"],
    }


def test_state_lists_records_by_object(org: Org) -> None:
    records = org.admin.state()["records"]
    assert {"User", "Account", "Contact", "Opportunity", "Lead", "Task", "Event"} <= set(records)
    assert "dana@acme.io" in {u["Email"] for u in records["User"]}
    assert len(records["Opportunity"]) == 3
