"""Asana refuses what the real API refuses (unknown tokens, `external` without OAuth, long
text values, premium features, forged page tokens), through the asana SDK, and the
connector keeps working: OAuth with refresh, or a notes marker on a personal access token."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asana
import httpx
import pytest
from asana.rest import ApiException

from connectors.asana import AsanaConnector
from connectors.asana_tasks import MARKER
from connectors.base import ConnectionConfig, Op, written_after
from connectors.errors import AuthExpired, Permanent
from sandbox.client import SandboxClient
from sandbox.server import Sandbox
from tests.admin_cli import make_cli
from tests.contract.case_asana import PAT, asana_config, oauth_credentials, oauth_token

TARGET = {"workspace": None, "project": "Customer Follow-ups", "section": "Inbox"}


@pytest.fixture(scope="module")
def running() -> Iterator[Sandbox]:
    with Sandbox(only=["asana"]) as sandbox:
        yield sandbox


@pytest.fixture
def admin(running: Sandbox) -> Iterator[SandboxClient]:
    running.reset()
    client = SandboxClient(running.origins["asana"])
    yield client
    client.http.post("/_sandbox/auth", json={"action": "restore"})


def _sdk(running: Sandbox, token: str) -> asana.TasksApi:
    configuration = asana.Configuration()
    configuration.host = running.urls["asana"]
    configuration.access_token = token
    configuration.retry_strategy = False
    return asana.TasksApi(asana.ApiClient(configuration))


def _http(running: Sandbox, token: str = PAT) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.Client(base_url=running.urls["asana"], headers=headers, trust_env=False)


def _project(http: httpx.Client) -> str:
    projects = http.get("/projects").json()["data"]
    return str(next(p["gid"] for p in projects if p["name"] == "Customer Follow-ups"))


def _op(item: str = "item-1", **fields: Any) -> Op:
    fields.setdefault("name", "Send Globex the pricing sheet")
    return Op.plan(
        org_id="org-1", meeting_id="meeting-1", connector="asana", connection="asana-main",
        action="upsert_task", item_key=item, target=TARGET, fields=fields,
    )  # fmt: skip


def _tasks(admin: SandboxClient) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = admin.state()["tasks"]
    return tasks


# -- tokens --------------------------------------------------------------------------------
def test_a_token_the_workspace_never_issued_is_401(running: Sandbox, admin: SandboxClient) -> None:
    with pytest.raises(ApiException) as caught:
        _sdk(running, "0/not-a-real-token").get_task("1", {})
    assert caught.value.status == 401
    wrong = ConnectionConfig(
        name="asana-main", provider="asana", base_url=running.urls["asana"],
        credentials={"token": "0/not-a-real-token"},
    )  # fmt: skip
    with pytest.raises(AuthExpired):
        AsanaConnector(wrong).apply(_op(), None)


def test_the_external_field_is_refused_to_a_personal_access_token(
    running: Sandbox, admin: SandboxClient
) -> None:
    with _http(running) as http:
        project = _project(http)
        data = {"name": "x", "projects": [project], "external": {"gid": "k-1", "data": "h"}}
        created = http.post("/tasks", json={"data": data})
        lookup = http.get("/tasks/external:k-1")
    assert created.status_code == 400 and "OAuth" in created.json()["errors"][0]["message"]
    assert lookup.status_code == 400
    with _http(running, oauth_token(running)) as http:
        assert http.post("/tasks", json={"data": data}).status_code == 201
        assert http.get("/tasks/external:k-1").json()["data"]["external"]["gid"] == "k-1"


# -- OAuth: authorization code, then refresh -------------------------------------------------
def test_the_code_grant_yields_a_refresh_token_and_a_user(running: Sandbox) -> None:
    credentials = oauth_credentials(running)
    assert set(credentials) == {"client_id", "client_secret", "refresh_token"}
    with _http(running, oauth_token(running)) as http:
        assert http.get("/users/me").status_code == 200


def test_an_expired_access_token_is_refreshed_once(running: Sandbox, admin: SandboxClient) -> None:
    connector = AsanaConnector(asana_config(running))
    first = connector.apply(_op(), None)
    admin.http.post("/_sandbox/auth", json={"action": "expire"}).raise_for_status()
    found = connector.find(_op())
    assert found is not None and found.external_id == first.external_id
    assert _tasks(admin)[0]["external"]["gid"] == _op().key


def test_a_wrong_client_secret_is_auth_expired(running: Sandbox) -> None:
    credentials = {**oauth_credentials(running), "client_secret": "wrong"}
    config = ConnectionConfig(
        name="asana-main", provider="asana", base_url=running.urls["asana"],
        credentials=credentials,
    )  # fmt: skip
    with pytest.raises(AuthExpired) as caught:
        AsanaConnector(config).find(_op())
    assert caught.value.provider_code == "invalid_client"


# -- a personal access token: the marker in the notes -----------------------------------------
@pytest.mark.parametrize(
    "notes",
    [
        pytest.param({"notes": "Hank asked for pricing."}, id="notes"),
        pytest.param({"html_notes": "<body>Hank asked for <em>pricing</em>.</body>"}, id="html"),
        pytest.param({}, id="no-notes"),
    ],
)
def test_a_pat_connection_keys_tasks_by_a_notes_marker(
    running: Sandbox, admin: SandboxClient, notes: dict[str, str]
) -> None:
    connector = AsanaConnector(asana_config(running, oauth=False))
    op = _op(**notes)
    receipt = connector.apply(op, None)
    (task,) = _tasks(admin)
    assert task.get("external") is None
    assert task["notes"].endswith(f"{MARKER} {op.key} {op.payload_hash}")
    # a lost response: find() sees the marker, the re-apply adds nothing
    found = AsanaConnector(asana_config(running, oauth=False)).find(op)
    assert found is not None and found.external_id == receipt.external_id
    assert found.extra["payload_hash"] == op.payload_hash
    connector.apply(op, found)
    assert len(_tasks(admin)) == 1


def test_a_pat_update_without_notes_leaves_a_persons_notes_alone(
    running: Sandbox, admin: SandboxClient
) -> None:
    connector = AsanaConnector(asana_config(running, oauth=False))
    first = connector.apply(_op(notes="Ours."), None)
    renamed = _op(name="Send Globex the revised pricing sheet")  # no notes this time
    connector.apply(renamed, first)
    (task,) = _tasks(admin)
    assert task["name"] == "Send Globex the revised pricing sheet"
    assert task["notes"].startswith("Ours.") and MARKER in task["notes"]


def _crowd(http: httpx.Client, count: int) -> str:
    """The project, with `count` more tasks in it (more than a page of 100 from 101)."""
    project = _project(http)
    for n in range(count):
        http.post("/tasks", json={"data": {"name": f"t{n}", "projects": [project]}})
    return project


def test_find_pages_through_a_big_project(running: Sandbox, admin: SandboxClient) -> None:
    with _http(running) as http:
        _crowd(http, 120)
    connector = AsanaConnector(asana_config(running, oauth=False))
    op = _op("late")
    receipt = connector.apply(op, None)
    found = connector.find(op)
    assert found is not None and found.external_id == receipt.external_id


def test_a_marker_scan_asks_a_failed_page_again_not_the_whole_scan(
    running: Sandbox, admin: SandboxClient
) -> None:
    # given an op's task on the second page of its project
    with _http(running) as http:
        _crowd(http, 120)
    connector = AsanaConnector(asana_config(running, oauth=False))
    op = _op("paged")
    receipt = connector.apply(op, None)

    # when two listings fail with a 503 (the first page's, then its second try)
    admin.arm("error", method="GET", path="/api/1.0/tasks", status=503, times=2)
    found = connector.find(op)

    # expect the scan through on the page's third try
    assert found is not None and found.external_id == receipt.external_id


def test_find_on_a_pat_scans_only_tasks_modified_since_the_op_was_planned(
    running: Sandbox, admin: SandboxClient
) -> None:
    # given an op's task among 150 others, all modified within the hour (Asana's filter)
    connector = AsanaConnector(asana_config(running, oauth=False))
    op = _op("recent")
    receipt = connector.apply(op, None)
    with _http(running) as http:
        project = _crowd(http, 150)
        hour_ago = datetime.now(UTC) - timedelta(hours=1)
        stale = hour_ago.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        answer = http.get("/tasks", params={"project": project, "modified_since": stale})
        assert len(answer.json()["data"]) == 151
        bad = http.get("/tasks", params={"project": project, "modified_since": "yesterday"})
        assert bad.status_code == 400 and "modified_since" in bad.text

    # when find() knows the op was planned a minute ago, and when it does not
    with written_after(datetime.now(UTC) - timedelta(minutes=1)):
        recent = connector.find(op)
    unbounded = connector.find(op)
    # and when the op was (by its ledger) planned well after its task was written
    with written_after(datetime.now(UTC) + timedelta(hours=1)):
        missed = connector.find(op)

    # expect the task found both ways, and a scan that starts after the task misses it
    assert recent is not None and recent.external_id == receipt.external_id
    assert unbounded is not None and unbounded.external_id == receipt.external_id
    assert missed is None


def test_a_marker_scan_looks_back_by_asanas_clock_not_a_ten_minute_guess(
    running: Sandbox, admin: SandboxClient
) -> None:
    # given a task written a minute before an op's earliest attempt, by the ledger's clock
    connector = AsanaConnector(asana_config(running, oauth=False))
    op = _op("a minute early")
    receipt = connector.apply(op, None)
    assert connector.clock.known  # the write's answer carried Asana's Date

    # when a lookup may assume no write of the op is older than a minute from now, and
    # when it may assume only two seconds from now
    with written_after(datetime.now(UTC) + timedelta(minutes=1)):
        missed = connector.find(op)
    with written_after(datetime.now(UTC) + timedelta(seconds=2)):
        found = connector.find(op)

    # expect the window to be a few seconds wide (this host and the emulator share a
    # clock), not the ten minutes assumed before Asana's clock was measured
    assert missed is None
    assert found is not None and found.external_id == receipt.external_id


# -- text values, pagination, premium features ------------------------------------------------
def test_a_text_custom_field_over_1024_characters_is_refused(
    running: Sandbox, admin: SandboxClient
) -> None:
    with _http(running) as http:
        project = _project(http)
        settings = http.get(f"/projects/{project}/custom_field_settings").json()["data"]
        link = next(
            s["custom_field"]["gid"] for s in settings if s["custom_field"]["type"] == "text"
        )
        data = {"name": "x", "projects": [project], "custom_fields": {link: "y" * 1_025}}
        refused = http.post("/tasks", json={"data": data})
        data["custom_fields"] = {link: "y" * 1_024}
        accepted = http.post("/tasks", json={"data": data})
    assert refused.status_code == 400 and "1024" in refused.json()["errors"][0]["message"]
    assert accepted.status_code == 201


def test_the_connector_cuts_a_long_text_value_and_says_so(
    running: Sandbox, admin: SandboxClient
) -> None:
    connector = AsanaConnector(asana_config(running))
    receipt = connector.apply(_op(custom_fields={"Meeting link": "z" * 2_000}), None)
    assert any("1024" in w for w in receipt.extra["warnings"])


def test_next_page_only_with_a_limit_and_offsets_are_opaque(
    running: Sandbox, admin: SandboxClient
) -> None:
    with _http(running) as http:
        whole = http.get("/projects").json()
        first = http.get("/projects", params={"limit": 1}).json()
        token = first["next_page"]["offset"]
        forged = http.get("/projects", params={"limit": 1, "offset": "1"})
        second = http.get("/projects", params={"limit": 1, "offset": token}).json()
    assert "next_page" not in whole and len(whole["data"]) > 1
    assert not token.isdigit()
    assert forged.status_code == 400
    assert second["data"][0]["gid"] == whole["data"][1]["gid"]


def test_custom_fields_on_a_free_workspace_are_402() -> None:
    with Sandbox(only=["asana"], options={"asana": {"premium": False}}) as free:
        connector = AsanaConnector(asana_config(free, oauth=False))
        with pytest.raises(Permanent) as caught:
            connector.apply(_op(custom_fields={"Priority": "High"}), None)
        plain = connector.apply(_op("plain"), None)  # without custom fields all is well
    assert caught.value.provider_code == "402"
    assert "premium" in caught.value.message
    assert plain.external_id


def test_an_oauth_connection_is_added_and_tested_from_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, running: Sandbox
) -> None:
    # given the credentials the code grant returned, stored as the connection's secrets
    cli = make_cli(tmp_path, monkeypatch)
    cli.ok("orgs", "create", "acme")
    pairs = [f"{k}={v}" for k, v in oauth_credentials(running).items()]
    cli.ok(
        "connections", "add", "acme-asana", "--org", "acme", "--provider", "asana",
        "--base-url", running.urls["asana"],
        *[arg for pair in pairs for arg in ("--credential", pair)],
    )  # fmt: skip
    # expect `connections test` to refresh an access token and reach Asana with it
    assert "ok   users/me" in cli.ok("connections", "test", "acme-asana")


def test_a_list_too_long_to_send_whole_must_be_paginated(
    running: Sandbox, admin: SandboxClient
) -> None:
    with _http(running) as http:
        project = _project(http)
        for n in range(1_001):
            http.post("/tasks", json={"data": {"name": f"t{n}", "projects": [project]}})
        whole = http.get("/tasks", params={"project": project})
        paged = http.get("/tasks", params={"project": project, "limit": 100})
    assert whole.status_code == 400 and "use pagination" in whole.json()["errors"][0]["message"]
    assert paged.status_code == 200 and paged.json()["next_page"] is not None
