"""The Asana connector through the real asana SDK against the emulator."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.asana import BATCH_WRITES, AsanaConnector
from connectors.base import ConnectionConfig, Op, Receipt
from connectors.errors import InvalidMapping, Permanent, RateLimited, Transient
from connectors.registry import connector_class
from connectors.write_policy import EDITED, HELD
from sandbox.client import SandboxClient
from sandbox.server import Sandbox
from tests.contract.case_asana import asana_config

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
    client.clear_faults()


@pytest.fixture
def connector(running: Sandbox, admin: SandboxClient) -> AsanaConnector:
    """Through the OAuth app: the connection that keys tasks by Asana's `external` field."""
    return AsanaConnector(asana_config(running))


def _connector(base_url: str, **options: Any) -> AsanaConnector:
    return AsanaConnector(
        ConnectionConfig(
            name="asana-main",
            provider="asana",
            base_url=base_url,
            credentials={"token": "sandbox-pat"},
            options=options,
        )
    )


def _op(item: str = "item-1", target: dict[str, Any] | None = None, **fields: Any) -> Op:
    fields.setdefault("name", "Send Globex the pricing sheet")
    fields.setdefault("notes", "Hank asked for pricing by Friday.")
    return Op.plan(
        org_id="org-1",
        meeting_id="meeting-1",
        connector="asana",
        connection="asana-main",
        action="upsert_task",
        item_key=item,
        target=target or TARGET,
        fields=fields,
    )


def _task(admin: SandboxClient, gid: str) -> dict[str, Any]:
    task: dict[str, Any] = next(t for t in admin.state()["tasks"] if t["gid"] == gid)
    return task


def _custom(task: dict[str, Any]) -> dict[str, Any]:
    return {f["name"]: f["display_value"] for f in task["custom_fields"]}


def test_the_entry_point_names_this_connector() -> None:
    assert connector_class("asana") is AsanaConnector


def test_a_task_lands_in_the_section_with_its_fields(
    connector: AsanaConnector, admin: SandboxClient
) -> None:
    op = _op(
        assignee_email="sam@acme.io",
        due_on="2026-12-01",
        followers_emails=["lee@acme.io", "priya@acme.io"],
    )
    receipt = connector.apply(op, None)
    task = _task(admin, receipt.external_id)
    assert receipt.object == "task"
    assert receipt.url == task["permalink_url"]
    assert (receipt.url or "").startswith("https://app.asana.com/0/")
    assert receipt.extra["warnings"] == []
    assert task["memberships"][0]["section"]["name"] == "Inbox"
    assert task["assignee"]["name"] == "Sam Patel"
    assert task["due_on"] == "2026-12-01"
    assert {f["name"] for f in task["followers"]} == {"Lee Chen", "Priya Nair"}
    assert task["external"] == {"gid": op.key, "data": op.payload_hash}


def test_enum_custom_fields_are_set_by_option_name(
    connector: AsanaConnector, admin: SandboxClient
) -> None:
    receipt = connector.apply(
        _op(custom_fields={"Priority": "Medium", "Meeting link": "https://meet.example/42"}),
        None,
    )
    assert _custom(_task(admin, receipt.external_id)) == {
        "Priority": "Medium",
        "Meeting link": "https://meet.example/42",
    }


@pytest.mark.parametrize(
    ("custom_fields", "named", "listed"),
    [
        pytest.param({"Priority": "Urgent"}, "'Urgent'", "High, Medium, Low", id="unknown-option"),
        pytest.param(
            {"Severity": "High"}, "'Severity'", "Meeting link, Priority", id="unknown-field"
        ),
    ],
)
def test_unknown_custom_fields_or_options_are_invalid_mappings(
    connector: AsanaConnector,
    admin: SandboxClient,
    custom_fields: dict[str, Any],
    named: str,
    listed: str,
) -> None:
    with pytest.raises(InvalidMapping) as caught:
        connector.apply(_op(custom_fields=custom_fields), None)
    assert named in caught.value.message and listed in caught.value.message
    assert admin.state()["tasks"] == []


@pytest.mark.parametrize(
    ("target", "named", "listed"),
    [
        pytest.param(
            {**TARGET, "section": "Someday"}, "'Someday'", "Done, Inbox, This week", id="section"
        ),
        pytest.param(
            {**TARGET, "project": "Sprint 99"},
            "'Sprint 99'",
            "Customer Follow-ups, Sprint 42",
            id="project",
        ),
        pytest.param(
            {**TARGET, "workspace": "Initech"}, "'Initech'", "Acme Analytics", id="workspace"
        ),
    ],
)
def test_unknown_places_are_invalid_mappings_listing_what_exists(
    connector: AsanaConnector,
    admin: SandboxClient,
    target: dict[str, Any],
    named: str,
    listed: str,
) -> None:
    with pytest.raises(InvalidMapping) as caught:
        connector.apply(_op(target=target), None)
    assert named in caught.value.message and listed in caught.value.message
    assert admin.state()["tasks"] == []


def test_targets_may_name_places_by_gid(connector: AsanaConnector, admin: SandboxClient) -> None:
    state = admin.state()
    project = next(p for p in state["projects"] if p["name"] == "Sprint 42")
    workspace = state["workspaces"][0]["gid"]
    target = {"workspace": workspace, "project": project["gid"], "section": "Review"}
    receipt = connector.apply(_op(target=target), None)
    assert _task(admin, receipt.external_id)["memberships"][0]["section"]["name"] == "Review"


def test_an_unknown_assignee_leaves_the_task_unassigned_with_a_warning(
    connector: AsanaConnector, admin: SandboxClient
) -> None:
    receipt = connector.apply(_op(assignee_email="hank@globex.com"), None)
    assert _task(admin, receipt.external_id)["assignee"] is None
    assert receipt.extra["warnings"] == [
        "no Asana user with email hank@globex.com; left unassigned"
    ]


def test_an_update_rewrites_fields_moves_section_and_adds_followers(
    connector: AsanaConnector, admin: SandboxClient
) -> None:
    first = connector.apply(
        _op(followers_emails=["sam@acme.io"], custom_fields={"Priority": "Low"}), None
    )
    changed = _op(
        target={**TARGET, "section": "This week"},
        name="Send revised pricing",
        due_on="2026-12-08",
        followers_emails=["lee@acme.io"],
        custom_fields={"Priority": "High"},
    )
    second = connector.apply(changed, first)
    task = _task(admin, first.external_id)
    assert second.external_id == first.external_id
    assert len(admin.state()["tasks"]) == 1
    assert task["name"] == "Send revised pricing" and task["due_on"] == "2026-12-08"
    assert [m["section"]["name"] for m in task["memberships"]] == ["This week"]
    assert {f["name"] for f in task["followers"]} == {"Sam Patel", "Lee Chen"}
    assert _custom(task)["Priority"] == "High"
    assert task["external"]["data"] == changed.payload_hash


def test_an_unchanged_reapply_sends_nothing(
    connector: AsanaConnector, admin: SandboxClient
) -> None:
    op = _op()
    first = connector.apply(op, None)
    before = sum(admin.stats()["requests"].values())
    again = connector.apply(op, first)
    assert again == first
    assert sum(admin.stats()["requests"].values()) == before


def test_names_are_resolved_once_per_connector(
    connector: AsanaConnector, admin: SandboxClient
) -> None:
    for item in ("item-1", "item-2", "item-3"):
        connector.apply(
            _op(item, assignee_email="sam@acme.io", custom_fields={"Priority": "High"}), None
        )
    requests = admin.stats()["requests"]
    assert requests["GET /api/1.0/projects"] == 1
    assert requests["GET /api/1.0/users/sam@acme.io"] == 1
    assert sum(n for k, n in requests.items() if k.endswith("custom_field_settings")) == 1
    assert requests["POST /api/1.0/tasks"] == 3


def test_find_looks_tasks_up_by_external_gid(
    connector: AsanaConnector, admin: SandboxClient
) -> None:
    op = _op()
    assert connector.find(op) is None
    applied = connector.apply(op, None)
    found = connector.find(op)
    assert found is not None
    assert (found.external_id, found.url) == (applied.external_id, applied.url)
    assert found.extra["payload_hash"] == op.payload_hash
    assert admin.stats()["requests"][f"GET /api/1.0/tasks/external:{op.key}"] == 2


def test_a_create_that_already_landed_becomes_an_update(
    connector: AsanaConnector, admin: SandboxClient
) -> None:
    # The ledger lost the receipt and did not call find(): Asana's unique external gid
    # refuses the second create, and the connector updates the task it already made.
    first = connector.apply(_op(), None)
    again = connector.apply(_op(name="Send the pricing sheet today"), None)
    assert again.external_id == first.external_id
    assert [t["name"] for t in admin.state()["tasks"]] == ["Send the pricing sheet today"]


def test_notes_keep_the_evidence_and_the_link_back(
    connector: AsanaConnector, admin: SandboxClient
) -> None:
    notes = (
        'Hank: "Can you send the pricing sheet by Friday?"\n\n'
        "From the Globex sync: https://meetsync.example/meetings/m-1"
    )
    receipt = connector.apply(_op(notes=notes), None)
    task = _task(admin, receipt.external_id)
    assert task["notes"] == notes
    assert receipt.url == task["permalink_url"]


def test_html_notes_are_sent_as_rich_text(connector: AsanaConnector, admin: SandboxClient) -> None:
    html = '<body>Evidence: <em>"send pricing"</em> <a href="https://notes/m1">meeting</a></body>'
    receipt = connector.apply(_op(html_notes=html), None)
    task = _task(admin, receipt.external_id)
    assert task["html_notes"] == html
    assert task["notes"] == 'Evidence: "send pricing" meeting'
    assert receipt.extra["warnings"] == []


def test_rich_text_asana_refuses_falls_back_to_plain_notes(
    connector: AsanaConnector, admin: SandboxClient
) -> None:
    op = _op(notes="Send pricing. https://notes/m1", html_notes="<body><p>Send pricing</p></body>")
    receipt = connector.apply(op, None)
    task = _task(admin, receipt.external_id)
    assert task["notes"] == "Send pricing. https://notes/m1"
    assert len(receipt.extra["warnings"]) == 1
    assert "html_notes" in receipt.extra["warnings"][0]
    assert len(admin.state()["tasks"]) == 1


def test_the_emulators_own_limiter_becomes_rate_limited() -> None:
    with Sandbox(only=["asana"], options={"asana": {"requests_per_minute": 2}}) as limited:
        connector = _connector(limited.urls["asana"])
        with pytest.raises(RateLimited) as caught:
            connector.apply(_op(), None)  # resolving names alone needs more than two calls
        stats = SandboxClient(limited.origins["asana"]).stats()
    assert 1 <= caught.value.retry_after <= 30
    assert "rate limit" in caught.value.message
    assert stats["http_429"] == 1


def test_an_unreachable_asana_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        connector = _connector(f"http://127.0.0.1:{port}/api/1.0", connect_timeout=1)
        with pytest.raises(Transient):
            connector.apply(_op(), None)


def test_an_unknown_action_is_an_invalid_mapping(connector: AsanaConnector) -> None:
    op = _op().model_copy(update={"action": "post_message"})
    with pytest.raises(InvalidMapping, match="upsert_task"):
        connector.apply(op, None)


def test_describe_lists_task_and_custom_fields(connector: AsanaConnector) -> None:
    schema = connector.describe(TARGET)
    priority = schema.field("custom_fields.Priority")
    link = schema.field("custom_fields.Meeting link")
    name = schema.field("name")
    assert schema.exists
    assert name is not None and name.required
    assert priority is not None and priority.picklist == ["High", "Medium", "Low"]
    assert priority.type == "picklist" and priority.restricted
    assert link is not None and link.type == "string"
    assert {"notes", "html_notes", "assignee_email", "due_on", "followers_emails"} <= {
        f.name for f in schema.fields
    }


@pytest.mark.parametrize(
    "target",
    [
        pytest.param({**TARGET, "section": "Someday"}, id="section"),
        pytest.param({**TARGET, "project": "Sprint 99"}, id="project"),
    ],
)
def test_describe_says_when_a_place_does_not_exist(
    connector: AsanaConnector, target: dict[str, Any]
) -> None:
    schema = connector.describe(target)
    assert not schema.exists
    assert schema.notes and "it has:" in schema.notes[0]


# -- write policies -------------------------------------------------------------------
def _person_edits(connector: AsanaConnector, gid: str, **data: Any) -> None:
    """A person changes the task through the Asana API, as they would in the app."""
    connector.tasks.update_task({"data": data}, gid, {"opt_fields": "gid"})


def test_unless_edited_keeps_a_renamed_task_name(
    connector: AsanaConnector, admin: SandboxClient
) -> None:
    # given a task meetsync made, which a person then renamed
    policy = {**TARGET, "write_policy": {"name": "unless_edited", "due_on": "unless_edited"}}
    first = connector.apply(_op(target=policy, due_on="2026-12-01"), None)
    _person_edits(connector, first.external_id, name="Pricing sheet (Hank wants PDF)")
    # when a re-extraction re-words the item and moves its due date
    changed = _op(target=policy, name="Send Globex the pricing sheet now", due_on="2026-12-04")
    second = connector.apply(changed, first)
    # expect the person's name kept, the untouched due date moved, the skip reported
    task = _task(admin, first.external_id)
    assert task["name"] == "Pricing sheet (Hank wants PDF)"
    assert task["due_on"] == "2026-12-04"
    assert second.extra["skipped"] == {"name": EDITED}
    # and a third run still knows the name as the person's, not ours
    third = connector.apply(_op(target=policy, name="Send it", due_on="2026-12-04"), second)
    assert third.extra["skipped"] == {"name": EDITED}
    assert _task(admin, first.external_id)["name"] == "Pricing sheet (Hank wants PDF)"


def test_if_empty_fills_a_due_date_only_while_there_is_none(
    connector: AsanaConnector, admin: SandboxClient
) -> None:
    # given a task without a due date, which a person then dated
    policy = {**TARGET, "write_policy": {"due_on": "if_empty"}}
    first = connector.apply(_op(target=policy), None)
    _person_edits(connector, first.external_id, due_on="2026-12-24")
    # when a re-run finds a due date in the meeting
    second = connector.apply(_op(target=policy, due_on="2026-12-01"), first)
    # expect the person's date kept
    assert _task(admin, first.external_id)["due_on"] == "2026-12-24"
    assert second.extra["skipped"] == {"due_on": HELD}


def test_a_reapply_never_blanks_what_the_op_leaves_out(
    connector: AsanaConnector, admin: SandboxClient
) -> None:
    # given a task a person assigned and dated after meetsync made it
    first = connector.apply(_op(), None)
    _person_edits(connector, first.external_id, due_on="2026-12-24", assignee="sam@acme.io")
    # when a re-worded item without owner or due date is re-applied
    connector.apply(_op(name="Send Globex the pricing sheet (v2)"), first)
    # expect the rewording, and the person's assignee and due date untouched
    task = _task(admin, first.external_id)
    assert task["name"] == "Send Globex the pricing sheet (v2)"
    assert task["due_on"] == "2026-12-24" and task["assignee"]["name"] == "Sam Patel"


# -- apply_many: new tasks through the Batch API, each op its own outcome ---------------
BATCH = "/api/1.0/batch"
TASKS = "/api/1.0/tasks"


@pytest.fixture
def token(running: Sandbox, admin: SandboxClient) -> AsanaConnector:
    """On a personal access token: tasks keyed by the marker line in their notes."""
    return _connector(running.urls["asana"])


def _batch_ops(count: int, **fields: Any) -> list[Op]:
    return [
        Op.plan(
            org_id="org-1",
            meeting_id="meeting-1",
            connector="asana",
            connection="asana-main",
            action="upsert_task",
            item_key=f"item-{n}",
            target=TARGET,
            fields={"name": f"Follow-up {n}", "notes": "From the call.", **fields},
        )
        for n in range(count)
    ]


def _requests(admin: SandboxClient, endpoint: str) -> int:
    return int(admin.stats()["requests"].get(endpoint, 0))


def test_new_tasks_go_in_one_request_and_each_is_found_by_its_key(
    token: AsanaConnector, admin: SandboxClient
) -> None:
    ops = _batch_ops(4, assignee_email="lee@acme.io", followers_emails=["priya@acme.io"])
    outcomes = token.apply_many([(op, None) for op in ops])
    assert all(isinstance(o, Receipt) for o in outcomes)
    assert _requests(admin, f"POST {BATCH}") == 1 and not _requests(admin, f"POST {TASKS}")
    state = admin.state()
    tasks = {t["gid"]: t for t in state["tasks"]}
    lee = next(u["gid"] for u in state["users"] if u["email"] == "lee@acme.io")
    for op, receipt in zip(ops, outcomes, strict=True):
        assert isinstance(receipt, Receipt)
        task = tasks[receipt.external_id]
        assert task["name"] == op.fields["name"] and task["assignee"]["gid"] == lee
        assert receipt.extra["payload_hash"] == op.payload_hash
        # found again by the marker, as a lost answer would need
        assert token.find(op) == Receipt(
            external_id=receipt.external_id,
            url=receipt.url,
            object="task",
            extra={"payload_hash": op.payload_hash, "warnings": []},
        )


def test_requests_carry_no_more_than_asanas_concurrent_writes_allow(
    token: AsanaConnector, admin: SandboxClient
) -> None:
    # a push holds a throttle slot per task it sends at once (workers.throttle)
    assert AsanaConnector.writes_at_once == BATCH_WRITES
    assert AsanaConnector.default_limits.concurrency == 15  # Asana's concurrent writes
    outcomes = token.apply_many([(op, None) for op in _batch_ops(2 * BATCH_WRITES + 1)])
    assert all(isinstance(o, Receipt) for o in outcomes)
    assert _requests(admin, f"POST {BATCH}") == 3
    assert len(admin.state()["tasks"]) == 2 * BATCH_WRITES + 1


def test_an_action_asana_refuses_fails_alone(token: AsanaConnector, admin: SandboxClient) -> None:
    admin.arm("error", status=400, method="POST", path=TASKS, message="name: too long")
    outcomes = token.apply_many([(op, None) for op in _batch_ops(3)])
    assert isinstance(outcomes[0], Permanent) and "too long" in outcomes[0].message
    assert all(isinstance(o, Receipt) for o in outcomes[1:])
    assert len(admin.state()["tasks"]) == 2


def test_rich_text_asana_refuses_is_sent_again_as_plain_notes_for_that_task(
    token: AsanaConnector, admin: SandboxClient
) -> None:
    plain, rich = _batch_ops(2)
    rich = rich.model_copy(
        update={"fields": {**rich.fields, "html_notes": "<body><blink>x</blink></body>"}}
    )
    outcomes = token.apply_many([(plain, None), (rich, None)])
    assert all(isinstance(o, Receipt) for o in outcomes)
    receipt = outcomes[1]
    assert isinstance(receipt, Receipt) and "html_notes" in receipt.extra["warnings"][0]
    assert len(admin.state()["tasks"]) == 2


def test_a_429_refuses_the_whole_request_and_nothing_is_created(
    token: AsanaConnector, admin: SandboxClient
) -> None:
    admin.arm("throttle", method="POST", path=TASKS, retry_after=7)
    outcomes = token.apply_many([(op, None) for op in _batch_ops(3)])
    first = outcomes[0]
    assert isinstance(first, RateLimited) and first.retry_after == 7
    assert outcomes[1:] == [None, None]  # never sent
    assert admin.state()["tasks"] == []


def test_asana_away_mid_request_leaves_every_op_of_it_in_doubt(
    token: AsanaConnector, admin: SandboxClient
) -> None:
    admin.arm("error", status=503, method="POST", path=BATCH)
    outcomes = token.apply_many([(op, None) for op in _batch_ops(3)])
    assert all(isinstance(o, Transient) for o in outcomes)


def test_an_update_among_them_is_written_on_its_own(
    token: AsanaConnector, admin: SandboxClient
) -> None:
    first, second, third = _batch_ops(3)
    prior = token.apply(first, None)
    changed = first.model_copy(
        update={"fields": {**first.fields, "name": "Renamed"}, "payload_hash": "changed"}
    )
    outcomes = token.apply_many([(changed, prior), (second, None), (third, None)])
    assert all(isinstance(o, Receipt) for o in outcomes)
    assert outcomes[0] is not None and outcomes[0].external_id == prior.external_id
    names = sorted(t["name"] for t in admin.state()["tasks"])
    assert names == ["Follow-up 1", "Follow-up 2", "Renamed"]
