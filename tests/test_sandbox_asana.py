"""The Asana emulator over HTTP: shapes, validation, external ids, auth and its own limits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sandbox.asana import TokenLimiter
from sandbox.client import SandboxClient
from sandbox.server import Sandbox
from tests.contract.case_asana import oauth_token

AUTH = {"Authorization": "Bearer sandbox-pat"}


@pytest.fixture(scope="module")
def running() -> Iterator[Sandbox]:
    with Sandbox(only=["asana"]) as sandbox:
        yield sandbox


@pytest.fixture
def api(running: Sandbox) -> Iterator[httpx.Client]:
    """An HTTP client on /api/1.0 of a freshly reset emulator."""
    running.reset()
    with httpx.Client(base_url=running.urls["asana"], headers=AUTH, trust_env=False) as client:
        yield client


@pytest.fixture
def oauth(running: Sandbox, api: httpx.Client) -> Iterator[httpx.Client]:
    """An HTTP client with an OAuth app's token: only those may use `external`."""
    headers = {"Authorization": f"Bearer {oauth_token(running)}"}
    with httpx.Client(base_url=running.urls["asana"], headers=headers, trust_env=False) as client:
        yield client


@pytest.fixture
def admin(running: Sandbox) -> Iterator[SandboxClient]:
    client = SandboxClient(running.origins["asana"])
    yield client
    client.http.post("/_sandbox/auth", json={"action": "restore"})
    client.clear_faults()


def _project(api: httpx.Client, name: str = "Customer Follow-ups") -> dict[str, Any]:
    projects = api.get("/projects", params={"workspace": _workspace(api)}).json()["data"]
    found: dict[str, Any] = next(p for p in projects if p["name"] == name)
    return found


def _workspace(api: httpx.Client) -> str:
    gid: str = api.get("/workspaces").json()["data"][0]["gid"]
    return gid


def _sections(api: httpx.Client, project: str) -> dict[str, str]:
    return {s["name"]: s["gid"] for s in api.get(f"/projects/{project}/sections").json()["data"]}


def _create(api: httpx.Client, **data: Any) -> httpx.Response:
    data.setdefault("name", "Send pricing")
    data.setdefault("projects", [_project(api)["gid"]])
    return api.post("/tasks", json={"data": data})


def _message(response: httpx.Response) -> str:
    errors = response.json()["errors"]
    assert errors and errors[0]["help"]
    message: str = errors[0]["message"]
    return message


def test_users_are_found_by_me_email_or_gid(api: httpx.Client) -> None:
    me = api.get("/users/me").json()["data"]
    by_email = api.get("/users/sam@acme.io").json()["data"]
    by_gid = api.get(f"/users/{by_email['gid']}").json()["data"]
    assert me["email"] == "dana@acme.io"
    assert by_email["name"] == by_gid["name"] == "Sam Patel"
    assert by_email["gid"].isdigit()
    assert {
        u["email"] for u in api.get("/users", params={"workspace": _workspace(api)}).json()["data"]
    } >= {"dana@acme.io", "sam@acme.io"}


def test_unknown_user_is_a_404_in_asanas_error_shape(api: httpx.Client) -> None:
    response = api.get("/users/nobody@acme.io")
    assert response.status_code == 404
    assert "nobody@acme.io" in _message(response)


@pytest.mark.parametrize(
    "headers",
    [pytest.param({}, id="no-token"), pytest.param({"Authorization": "Basic x"}, id="not-bearer")],
)
def test_requests_without_a_bearer_token_are_not_authorized(
    running: Sandbox, api: httpx.Client, headers: dict[str, str]
) -> None:
    response = httpx.get(running.urls["asana"] + "/users/me", headers=headers, trust_env=False)
    assert response.status_code == 401
    assert _message(response) == "Not Authorized"


def test_revoked_tokens_get_401_until_restored(api: httpx.Client, admin: SandboxClient) -> None:
    admin.http.post("/_sandbox/auth", json={"action": "revoke"}).raise_for_status()
    revoked = api.get("/users/me")
    admin.http.post("/_sandbox/auth", json={"action": "restore"}).raise_for_status()
    assert revoked.status_code == 401 and _message(revoked) == "Not Authorized"
    assert api.get("/users/me").status_code == 200


def test_created_task_is_found_by_its_external_gid(oauth: httpx.Client) -> None:
    created = _create(oauth, external={"gid": "meet-1", "data": "hash-1"})
    assert created.status_code == 201
    task = created.json()["data"]
    found = oauth.get("/tasks/external:meet-1").json()["data"]
    assert found["gid"] == task["gid"]
    assert found["external"] == {"gid": "meet-1", "data": "hash-1"}
    assert found["permalink_url"] == (
        f"https://app.asana.com/0/{task['projects'][0]['gid']}/{task['gid']}"
    )


def test_external_gid_is_unique_in_the_workspace(oauth: httpx.Client, admin: SandboxClient) -> None:
    _create(oauth, external={"gid": "meet-1"})
    second = _create(oauth, name="Another", external={"gid": "meet-1"})
    assert second.status_code == 400
    assert "external" in _message(second)
    assert len(admin.state()["tasks"]) == 1


def test_deleting_a_task_frees_its_external_gid(oauth: httpx.Client) -> None:
    gid = _create(oauth, external={"gid": "meet-1"}).json()["data"]["gid"]
    assert oauth.delete(f"/tasks/{gid}").json() == {"data": {}}
    assert oauth.get("/tasks/external:meet-1").status_code == 404
    assert _create(oauth, external={"gid": "meet-1"}).status_code == 201


def test_tasks_are_listed_by_project_in_compact_form(api: httpx.Client) -> None:
    project = _project(api)["gid"]
    _create(api, name="One")
    _create(api, name="Two", projects=[_project(api, "Sprint 42")["gid"]])
    listed = api.get("/tasks", params={"project": project}).json()
    assert [t["name"] for t in listed["data"]] == ["One"]
    assert set(listed["data"][0]) == {"gid", "name", "resource_type", "resource_subtype"}
    assert "next_page" not in listed  # no `limit`, no pagination


def test_listing_tasks_needs_a_filter(api: httpx.Client) -> None:
    response = api.get("/tasks")
    assert response.status_code == 400
    assert "project" in _message(response)


@pytest.mark.parametrize(
    "due_on",
    [
        pytest.param("2026-02-30", id="no-such-day"),
        pytest.param("tomorrow", id="words"),
        pytest.param("2026-1-5", id="unpadded"),
        pytest.param(20261201, id="number"),
    ],
)
def test_due_on_must_be_a_real_iso_date(api: httpx.Client, due_on: Any) -> None:
    response = _create(api, due_on=due_on)
    assert response.status_code == 400
    assert _message(response).startswith("due_on")


@pytest.mark.parametrize(
    "ref",
    [
        pytest.param("lee@acme.io", id="email"),
        pytest.param("gid", id="gid"),
        pytest.param("me", id="me"),
    ],
)
def test_assignee_may_be_a_gid_an_email_or_me(api: httpx.Client, ref: str) -> None:
    lee = api.get("/users/lee@acme.io").json()["data"]
    me = api.get("/users/me").json()["data"]
    assignee = lee["gid"] if ref == "gid" else ref
    task = _create(api, assignee=assignee).json()["data"]
    assert task["assignee"]["gid"] == (me["gid"] if ref == "me" else lee["gid"])


def test_unknown_assignee_is_refused(api: httpx.Client) -> None:
    response = _create(api, assignee="ghost@acme.io")
    assert response.status_code == 400
    assert "assignee" in _message(response)


def test_memberships_pin_a_section_and_add_task_moves_it(api: httpx.Client) -> None:
    project = _project(api)["gid"]
    sections = _sections(api, project)
    task = _create(
        api, projects=None, memberships=[{"project": project, "section": sections["Inbox"]}]
    ).json()["data"]
    moved = api.post(f"/sections/{sections['Done']}/addTask", json={"data": {"task": task["gid"]}})
    after = api.get(f"/tasks/{task['gid']}").json()["data"]
    assert task["memberships"][0]["section"]["name"] == "Inbox"
    assert moved.json() == {"data": {}}
    assert [m["section"]["name"] for m in after["memberships"]] == ["Done"]


def test_a_section_of_another_project_is_refused(api: httpx.Client) -> None:
    project = _project(api)["gid"]
    elsewhere = _sections(api, _project(api, "Sprint 42")["gid"])["Backlog"]
    response = _create(api, projects=None, memberships=[{"project": project, "section": elsewhere}])
    assert response.status_code == 400


def test_followers_are_added_once_each(api: httpx.Client) -> None:
    task = _create(api, followers=["sam@acme.io"]).json()["data"]
    added = api.post(
        f"/tasks/{task['gid']}/addFollowers",
        json={"data": {"followers": ["sam@acme.io", "lee@acme.io"]}},
    ).json()["data"]
    assert [f["name"] for f in added["followers"]] == ["Sam Patel", "Lee Chen"]


def test_enum_custom_fields_take_option_gids(api: httpx.Client) -> None:
    project = _project(api)["gid"]
    settings = api.get(f"/projects/{project}/custom_field_settings").json()["data"]
    fields = {s["custom_field"]["name"]: s["custom_field"] for s in settings}
    priority = fields["Priority"]
    high = next(o["gid"] for o in priority["enum_options"] if o["name"] == "High")
    task = _create(
        api, custom_fields={priority["gid"]: high, fields["Meeting link"]["gid"]: "https://meet/1"}
    )
    values = {f["name"]: f["display_value"] for f in task.json()["data"]["custom_fields"]}
    refused = _create(api, custom_fields={priority["gid"]: "999"})
    assert values == {"Priority": "High", "Meeting link": "https://meet/1"}
    assert refused.status_code == 400


def test_a_custom_field_must_be_on_the_tasks_project(api: httpx.Client) -> None:
    response = _create(api, custom_fields={"1": "x"})
    assert response.status_code == 400
    assert "not on given object" in _message(response)


def test_html_notes_become_notes(api: httpx.Client) -> None:
    html = '<body>Send <strong>pricing</strong> <a href="https://notes/m1">meeting</a></body>'
    task = _create(api, html_notes=html).json()["data"]
    assert task["html_notes"] == html
    assert task["notes"] == "Send pricing meeting"


@pytest.mark.parametrize(
    "html",
    [
        pytest.param("<body>Send <b>pricing</body>", id="not-xml"),
        pytest.param("<div>Send pricing</div>", id="root-not-body"),
        pytest.param("<body><p>Send pricing</p></body>", id="paragraph"),
        pytest.param("<body>Send<br/>pricing</body>", id="line-break"),
        pytest.param('<body><a href="x" onclick="y">z</a></body>', id="script-attribute"),
    ],
)
def test_html_notes_outside_asanas_rich_text_are_refused(api: httpx.Client, html: str) -> None:
    response = _create(api, html_notes=html)
    assert response.status_code == 400
    assert _message(response).startswith("html_notes")


def test_update_changes_fields_and_refuses_read_only_ones(api: httpx.Client) -> None:
    gid = _create(api).json()["data"]["gid"]
    updated = api.put(f"/tasks/{gid}", json={"data": {"name": "Renamed", "due_on": None}})
    refused = api.put(f"/tasks/{gid}", json={"data": {"projects": []}})
    assert updated.json()["data"]["name"] == "Renamed"
    assert refused.status_code == 400


def test_opt_fields_select_what_comes_back(api: httpx.Client) -> None:
    gid = _create(api).json()["data"]["gid"]
    task = api.get(f"/tasks/{gid}", params={"opt_fields": "name,permalink_url"}).json()["data"]
    assert set(task) == {"gid", "name", "permalink_url"}


def test_lists_page_with_limit_and_offset(api: httpx.Client) -> None:
    first = api.get("/projects", params={"limit": 1}).json()
    second = api.get("/projects", params={"limit": 1, "offset": first["next_page"]["offset"]})
    assert first["next_page"]["path"].startswith("/projects?")
    assert [p["name"] for p in first["data"] + second.json()["data"]] == [
        "Customer Follow-ups",
        "Sprint 42",
    ]
    assert second.json()["next_page"] is None
    assert api.get("/projects", params={"limit": 101}).status_code == 400


def test_unknown_routes_and_objects_are_404(api: httpx.Client) -> None:
    route = api.get("/goals/1")
    task = api.get("/tasks/1")
    assert route.status_code == 404 and _message(route) == "No matching route for request"
    assert task.status_code == 404 and "Unknown object" in _message(task)


@pytest.mark.parametrize(
    ("status", "retry_after"),
    [
        pytest.param(500, None, id="500"),
        pytest.param(429, 7, id="429"),
        pytest.param(403, None, id="403"),
    ],
)
def test_injected_faults_look_like_asana(
    api: httpx.Client, admin: SandboxClient, status: int, retry_after: int | None
) -> None:
    admin.arm("error", status=status, retry_after=retry_after, path="/api/1.0/users")
    response = api.get("/users/me")
    assert response.status_code == status
    error = response.json()["errors"][0]
    assert error["message"] and error["help"]
    assert ("phrase" in error) == (status >= 500)
    assert response.headers.get("Retry-After") == (str(retry_after) if retry_after else None)


def test_the_per_minute_limit_answers_429_with_retry_after() -> None:
    with Sandbox(only=["asana"], options={"asana": {"requests_per_minute": 3}}) as limited:
        with httpx.Client(base_url=limited.urls["asana"], headers=AUTH, trust_env=False) as api:
            statuses = [api.get("/users/me").status_code for _ in range(3)]
            throttled = api.get("/users/me")
            other = {"Authorization": "Bearer sandbox-pat-0123456789"}
            other_token = api.get("/users/me", headers=other)
        stats = SandboxClient(limited.origins["asana"]).stats()
    assert statuses == [200, 200, 200]
    assert throttled.status_code == 429
    assert 1 <= int(throttled.headers["Retry-After"]) <= 20  # a token frees every 20 s
    assert "rate limit" in _message(throttled)
    assert other_token.status_code == 200  # limits are per token
    assert stats["http_429"] == 1


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_limiter_caps_concurrent_writes_at_fifteen() -> None:
    limiter = TokenLimiter(per_minute=1500, concurrent_writes=15, clock=_Clock())
    admitted = [limiter.admit(write=True) for _ in range(15)]
    refused = limiter.admit(write=True)
    read = limiter.admit(write=False)
    limiter.release()
    assert admitted == [None] * 15
    assert refused is not None and refused > 0
    assert read is None  # reads are not capped by the write limit
    assert limiter.admit(write=True) is None


def test_limiter_refills_over_the_minute() -> None:
    clock = _Clock()
    limiter = TokenLimiter(per_minute=150, concurrent_writes=15, clock=clock)
    spent = [limiter.admit(write=False) for _ in range(150)]
    wait = limiter.admit(write=False)
    clock.now += 0.4  # one token takes 0.4 s at 150 per minute
    assert spent == [None] * 150
    assert wait == pytest.approx(0.4)
    assert limiter.admit(write=False) is None


# -- the Batch API: POST /batch, at most ten actions -----------------------------------
def _batch(api: httpx.Client, *actions: dict[str, Any]) -> httpx.Response:
    return api.post("/batch", json={"data": {"actions": list(actions)}})


def _create_action(project: str, name: str) -> dict[str, Any]:
    return {
        "method": "post",
        "relative_path": "/tasks",
        "data": {"name": name, "projects": [project]},
        "options": {"fields": ["name", "permalink_url"]},
    }


def test_each_action_answers_as_its_own_request_would_in_order(api: httpx.Client) -> None:
    project = _project(api)["gid"]
    response = _batch(
        api,
        _create_action(project, "Send pricing"),
        {"method": "post", "relative_path": "/tasks", "data": {"name": "No place"}},
        {"method": "get", "relative_path": "/users/me", "options": {"fields": ["email"]}},
        {"method": "get", "relative_path": "/tasks/404404"},
    )
    assert response.status_code == 200  # even when some actions fail
    created, placeless, me, missing = response.json()["data"]
    assert created["status_code"] == 201
    task = created["body"]["data"]
    assert task["name"] == "Send pricing" and task["permalink_url"]
    assert set(task) == {"gid", "name", "permalink_url"}  # options.fields is opt_fields
    assert created["headers"] == {"location": f"/tasks/{task['gid']}"}
    assert placeless["status_code"] == 400
    assert "workspace" in placeless["body"]["errors"][0]["message"]
    assert me["status_code"] == 200 and set(me["body"]["data"]) == {"gid", "email"}
    assert missing["status_code"] == 404 and missing["body"]["errors"][0]["help"]
    # the created task is a task like any other
    assert api.get(f"/tasks/{task['gid']}").json()["data"]["name"] == "Send pricing"


def test_a_get_action_takes_its_query_from_data(api: httpx.Client) -> None:
    project = _project(api)["gid"]
    _batch(api, _create_action(project, "One"), _create_action(project, "Two"))
    listed = _batch(
        api,
        {
            "method": "get",
            "relative_path": "/tasks",
            "data": {"project": project},
            "options": {"limit": 1, "fields": ["name"]},
        },
    ).json()["data"][0]
    assert listed["status_code"] == 200
    assert len(listed["body"]["data"]) == 1 and listed["body"]["next_page"]["offset"]


@pytest.mark.parametrize(
    ("actions", "words"),
    [
        ([], "actions"),
        ([{"method": "get", "relative_path": "/users/me"}] * 11, "at most 10"),
        ([{"relative_path": "/users/me"}], "method"),
    ],
)
def test_a_malformed_batch_is_refused_whole(
    api: httpx.Client, actions: list[dict[str, Any]], words: str
) -> None:
    response = _batch(api, *actions)
    assert response.status_code == 400
    assert words in response.json()["errors"][0]["message"]


def test_a_nested_batch_is_refused_for_that_action(api: httpx.Client) -> None:
    nested = {"method": "post", "relative_path": "/batch", "data": {"actions": []}}
    response = _batch(api, nested, {"method": "get", "relative_path": "/users/me"})
    assert [r["status_code"] for r in response.json()["data"]] == [400, 200]


def test_a_batch_needs_a_token(running: Sandbox) -> None:
    with httpx.Client(base_url=running.urls["asana"], trust_env=False) as anonymous:
        response = _batch(anonymous, {"method": "get", "relative_path": "/users/me"})
    assert response.status_code == 401


def test_a_batch_over_the_limit_is_refused_whole_and_runs_nothing() -> None:
    options = {"asana": {"requests_per_minute": 4}}
    with (
        Sandbox(only=["asana"], options=options) as limited,
        httpx.Client(base_url=limited.urls["asana"], headers=AUTH, trust_env=False) as api,
    ):
        projects = api.get("/projects").json()["data"]  # one request of the four
        project = next(p["gid"] for p in projects if p["name"] == "Customer Follow-ups")
        names = ["A", "B", "C", "D"]
        refused = _batch(api, *(_create_action(project, n) for n in names))
        fits = _batch(api, *(_create_action(project, n) for n in names[:3]))
        tasks = limited.admin("asana").state()["tasks"]
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert fits.status_code == 200
    assert [r["status_code"] for r in fits.json()["data"]] == [201, 201, 201]
    assert sorted(t["name"] for t in tasks) == ["A", "B", "C"]  # none of the four


def test_limiter_admits_a_batch_whole_or_not_at_all() -> None:
    now = [0.0]
    limiter = TokenLimiter(per_minute=10, concurrent_writes=3, clock=lambda: now[0])
    assert limiter.admit_many(4, writes=4) == 1.0  # four writes at once exceed three
    assert limiter.admit_many(3, writes=3) is None
    assert limiter.admit(write=True) == 1.0  # every write slot is taken
    for _ in range(3):
        limiter.release()
    wait = limiter.admit_many(8, writes=0)  # 7 tokens left: a token a 6 s
    assert wait == pytest.approx(6.0)
    assert limiter.admit_many(7, writes=0) is None
