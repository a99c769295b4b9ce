"""Fault injection and inspection, seen from outside by real HTTP clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests

from cli.sandbox import read_config
from sandbox.client import SandboxClient
from sandbox.faults import FaultPlan
from sandbox.server import Sandbox

TASKS = "/api/1.0/tasks"
POST_MESSAGE = "/api/chat.postMessage"
TOKEN = "xoxb-sandbox-faults"


@pytest.fixture(scope="module")
def running() -> Iterator[Sandbox]:
    options = {"slack": {"rate_limits": False, "token": TOKEN}, "asana": {}}
    with Sandbox(only=["asana", "slack"], options=options) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(running: Sandbox) -> Sandbox:
    running.reset()
    return running


@pytest.fixture
def slack(sandbox: Sandbox) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=sandbox.urls["slack"], headers=headers, trust_env=False) as http:
        yield http


@pytest.fixture
def asana(sandbox: Sandbox) -> Iterator[httpx.Client]:
    headers = {"Authorization": "Bearer sandbox-asana-token"}
    with httpx.Client(base_url=sandbox.urls["asana"], headers=headers, trust_env=False) as http:
        yield http


def post(slack: httpx.Client, text: str = "hello") -> httpx.Response:
    return slack.post("chat.postMessage", json={"channel": "sales-meetings", "text": text})


def statuses(slack: httpx.Client, n: int) -> list[int]:
    return [post(slack, f"message {i}").status_code for i in range(n)]


def messages(admin: SandboxClient) -> list[dict[str, Any]]:
    return list(admin.state()["messages"])


NOISY = [
    {"kind": "error", "rate": 0.2, "status": [500, 502, 503], "path": POST_MESSAGE},
    {"kind": "throttle", "rate": 0.1, "burst": 2, "retry_after": 1, "path": POST_MESSAGE},
]


# -- reproducibility ---------------------------------------------------------------------
def test_the_same_seed_gives_the_same_faults(sandbox: Sandbox, slack: httpx.Client) -> None:
    admin = sandbox.admin("slack")
    admin.configure_faults(NOISY, seed=42)
    first = statuses(slack, 60)
    admin.configure_faults(NOISY, seed=42)
    second = statuses(slack, 60)
    admin.configure_faults(NOISY, seed=43)
    other = statuses(slack, 60)

    assert first == second
    assert other != first
    assert {500, 502, 503, 429, 200} <= set(first)


def test_a_configured_sandbox_replays_its_faults_after_reset(tmp_path: Path) -> None:
    config_file = tmp_path / "sandbox.yaml"
    config_file.write_text(
        "seed: 7\n"
        "only: [slack]\n"
        "providers:\n"
        "  slack:\n"
        f"    options: {{rate_limits: false, token: {TOKEN}}}\n"
        "    faults:\n"
        f"      - {{kind: error, rate: 0.3, status: 503, path: {POST_MESSAGE}}}\n"
    )
    with Sandbox.from_config(read_config(str(config_file))) as configured:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=configured.urls["slack"], headers=headers) as http:
            first = statuses(http, 30)
            configured.admin("slack").reset()
            again = statuses(http, 30)
        described = configured.admin("slack").faults()

    assert first == again
    assert 503 in first
    assert described["seed"] == 7
    assert [r["kind"] for r in described["rules"]] == ["error"]


def test_a_seeded_plan_draws_the_same_latencies() -> None:
    rules: list[dict[str, Any]] = [
        {"kind": "latency", "latency": {"lognormal": {"median": 0.05, "sigma": 1.0}, "max": 0.2}},
        {"kind": "latency", "rate": 0.5, "latency": {"uniform": [0.0, 0.01]}},
    ]
    plans = [FaultPlan(), FaultPlan()]
    for plan in plans:
        plan.configure(rules, seed=5)

    delays = [[plan.decide("POST", "/x") for _ in range(50)] for plan in plans]

    assert delays[0] == delays[1]
    assert all(d is not None and 0 < d.delay <= 0.21 for d in delays[0])


# -- each kind, as a client sees it ---------------------------------------------------------
def test_an_injected_5xx_has_the_providers_error_shape(
    sandbox: Sandbox, asana: httpx.Client
) -> None:
    sandbox.admin("asana").arm("error", status=503, path=TASKS)

    failed = asana.get("/tasks", params={"project": "1"})

    assert failed.status_code == 503
    assert failed.json()["errors"][0]["message"]


def test_a_429_burst_is_n_consecutive_429s_with_retry_after(
    sandbox: Sandbox, slack: httpx.Client
) -> None:
    admin = sandbox.admin("slack")
    admin.configure_faults(
        [{"kind": "throttle", "burst": 3, "retry_after": 4, "times": 1, "path": POST_MESSAGE}]
    )

    answers = [post(slack) for _ in range(4)]

    assert [a.status_code for a in answers] == [429, 429, 429, 200]
    assert [a.headers.get("Retry-After") for a in answers[:3]] == ["4", "4", "4"]
    assert answers[0].json() == {"ok": False, "error": "ratelimited"}
    assert admin.stats()["http_429"] == 3
    assert admin.stats()["faults"] == {"throttle": 3}


def test_a_reset_breaks_the_connection_and_writes_nothing(sandbox: Sandbox) -> None:
    admin = sandbox.admin("slack")
    admin.arm("reset", method="POST", path=POST_MESSAGE)

    with pytest.raises(requests.ConnectionError):
        requests.post(
            sandbox.urls["slack"] + "chat.postMessage",
            json={"channel": "sales-meetings", "text": "hello"},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
        )

    assert messages(admin) == []
    assert admin.stats()["requests"] == {f"POST {POST_MESSAGE}": 1}
    assert admin.stats()["answered_2xx"] == {}


def test_a_timeout_answers_nothing_and_writes_nothing(
    sandbox: Sandbox, slack: httpx.Client
) -> None:
    admin = sandbox.admin("slack")
    admin.arm("timeout", path=POST_MESSAGE, hold=10)

    with pytest.raises(httpx.ReadTimeout):
        slack.post(
            "chat.postMessage", json={"channel": "sales-meetings", "text": "hi"}, timeout=0.3
        )

    assert post(slack).status_code == 200
    assert len(messages(admin)) == 1


def test_a_lost_response_applies_the_write(sandbox: Sandbox) -> None:
    admin = sandbox.admin("slack")
    admin.arm("lost_response", method="POST", path=POST_MESSAGE)

    with pytest.raises(requests.ConnectionError):
        requests.post(
            sandbox.urls["slack"] + "chat.postMessage",
            json={"channel": "sales-meetings", "text": "applied but unheard"},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
        )

    assert [m["text"] for m in messages(admin)] == ["applied but unheard"]
    assert admin.stats()["faults"] == {"lost_response": 1}
    assert admin.stats()["answered_2xx"] == {f"POST {POST_MESSAGE}": 1}


def test_latency_delays_but_serves(sandbox: Sandbox, slack: httpx.Client) -> None:
    admin = sandbox.admin("slack")
    admin.configure_faults([{"kind": "latency", "latency": {"fixed": 0.01}}])

    answer = post(slack)

    assert answer.json()["ok"] is True
    assert admin.stats()["faults"] == {"latency": 1}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        pytest.param({"method": "GET"}, [201, 503], id="by-method"),
        pytest.param({"path": f"{TASKS}/*"}, [201, 503], id="by-glob"),
        pytest.param({"path": TASKS}, [503, 503], id="by-prefix"),
    ],
)
def test_rules_match_by_method_and_path(
    sandbox: Sandbox, asana: httpx.Client, rule: dict[str, Any], expected: list[int]
) -> None:
    sandbox.admin("asana").configure_faults([{"kind": "error", **rule}])
    workspace = sandbox.admin("asana").state()["workspaces"][0]["gid"]

    created = asana.post("/tasks", json={"data": {"name": "t", "workspace": workspace}})
    fetched = asana.get("/tasks/123")

    assert [created.status_code, fetched.status_code] == expected


# -- the admin and Python APIs --------------------------------------------------------------
def test_rules_set_in_python_are_visible_over_http(sandbox: Sandbox) -> None:
    provider = sandbox.providers["asana"]
    provider.configure_faults([{"kind": "error", "rate": 0.5, "path": TASKS}], seed=9)

    described = sandbox.admin("asana").faults()

    assert described["seed"] == 9
    assert [(r["kind"], r["rate"], r["path"]) for r in described["rules"]] == [
        ("error", 0.5, TASKS)
    ]


def test_rules_set_over_http_reach_the_provider(sandbox: Sandbox) -> None:
    admin = sandbox.admin("asana")
    admin.configure_faults([{"kind": "reset", "rate": 0.1}], seed=1)
    admin.add_faults([{"kind": "latency", "latency": {"uniform": [0, 0.01]}}])

    held = sandbox.providers["asana"].faults.describe()
    admin.clear_faults()

    assert [r["kind"] for r in held["rules"]] == ["reset", "latency"]
    assert admin.faults()["rules"] == []


@pytest.mark.parametrize(
    ("rule", "complaint"),
    [
        pytest.param({"kind": "explode"}, "unknown fault kind", id="kind"),
        pytest.param({"kind": "error", "rate": 2}, "rate", id="rate"),
        pytest.param({"kind": "error", "colour": "red"}, "colour", id="unknown-key"),
        pytest.param({"kind": "latency", "latency": {"gaussian": 1}}, "latency", id="latency"),
        pytest.param({"kind": "timeout", "hold": 10_000}, "hold", id="hold"),
    ],
)
def test_a_bad_rule_is_refused_with_its_reason(
    sandbox: Sandbox, rule: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        sandbox.admin("asana").configure_faults([rule])


def test_reset_restores_the_world_counters_and_faults(
    sandbox: Sandbox, slack: httpx.Client
) -> None:
    admin = sandbox.admin("slack")
    post(slack)
    admin.configure_faults([{"kind": "error", "status": 500}])
    post(slack)

    admin.reset()

    assert messages(admin) == []
    assert admin.stats() == {"requests": {}, "answered_2xx": {}, "http_429": 0, "faults": {}}
    assert admin.faults()["rules"] == []
    assert post(slack).status_code == 200


def test_stats_count_requests_per_endpoint(sandbox: Sandbox, asana: httpx.Client) -> None:
    asana.get("/workspaces")
    asana.get("/workspaces")
    asana.get("/users/me")

    requests_seen = sandbox.admin("asana").stats()["requests"]

    assert requests_seen == {"GET /api/1.0/workspaces": 2, "GET /api/1.0/users/me": 1}


# -- config files -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("config", "complaint"),
    [
        pytest.param({"provders": {}}, "unknown sandbox config keys", id="top-level-typo"),
        pytest.param({"providers": {"jira": {}}}, "unknown provider 'jira'", id="provider"),
        pytest.param({"providers": {"slack": {"limits": {}}}}, "slack: unknown keys", id="key"),
        pytest.param(
            {"only": ["slack"], "providers": {"slack": {"faults": [{"kind": "boom"}]}}},
            "unknown fault kind",
            id="rule",
        ),
    ],
)
def test_a_bad_config_names_its_mistake(config: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        Sandbox.from_config(config)


def test_a_json_config_passes_options_to_the_emulator(tmp_path: Path) -> None:
    config_file = tmp_path / "sandbox.json"
    config_file.write_text('{"only": ["asana"], "providers": {"asana": {"options": {"x": 1}}}}')

    configured = Sandbox.from_config(read_config(str(config_file)))

    assert configured.names == ["asana"]
    assert configured.providers["asana"].options == {"x": 1}
