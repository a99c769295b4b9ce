"""The Asana emulator's Batch API, as Asana documents it (POST /batch, at most ten actions)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sandbox.asana import TokenLimiter
from sandbox.server import Sandbox

AUTH = {"Authorization": "Bearer sandbox-pat"}


@pytest.fixture(scope="module")
def running() -> Iterator[Sandbox]:
    with Sandbox(only=["asana"]) as sandbox:
        yield sandbox


@pytest.fixture
def api(running: Sandbox) -> Iterator[httpx.Client]:
    running.reset()
    with httpx.Client(base_url=running.urls["asana"], headers=AUTH, trust_env=False) as client:
        yield client


def _project(api: httpx.Client) -> str:
    projects = api.get("/projects").json()["data"]
    gid: str = next(p["gid"] for p in projects if p["name"] == "Customer Follow-ups")
    return gid


def _batch(api: httpx.Client, *actions: dict[str, Any]) -> httpx.Response:
    return api.post("/batch", json={"data": {"actions": list(actions)}})


def _create(project: str, name: str) -> dict[str, Any]:
    return {
        "method": "post",
        "relative_path": "/tasks",
        "data": {"name": name, "projects": [project]},
        "options": {"fields": ["name", "permalink_url"]},
    }


def test_each_action_answers_as_its_own_request_would_in_order(api: httpx.Client) -> None:
    project = _project(api)
    response = _batch(
        api,
        _create(project, "Send pricing"),
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
    project = _project(api)
    _batch(api, _create(project, "One"), _create(project, "Two"))
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
        project = _project(api)  # one request of the four
        names = ["A", "B", "C", "D"]
        refused = _batch(api, *(_create(project, n) for n in names))
        fits = _batch(api, *(_create(project, n) for n in names[:3]))
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
