"""A fourth provider is one module plus one entry point: the README's example, installed."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.base import ConnectionConfig, Connector, Op
from connectors.errors import AuthExpired, Permanent, RateLimited, Transient
from connectors.registry import UnknownConnector, available, build, connector_class

README = Path(__file__).resolve().parents[1] / "connectors" / "README.md"


@pytest.fixture
def jotter_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[type]:
    """The README's example connector as an installed distribution with its entry point."""
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert code is not None, "connectors/README.md lost its example connector"
    (tmp_path / "jotter_connector.py").write_text(code.group(1))
    info = tmp_path / "jotter_connector-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: jotter-connector\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[meetsync.connectors]\njotter = jotter_connector:JotterConnector\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    available.cache_clear()
    try:
        yield connector_class("jotter")
    finally:
        monkeypatch.undo()
        sys.modules.pop("jotter_connector", None)
        available.cache_clear()


def config() -> ConnectionConfig:
    return ConnectionConfig(name="team-jotter", provider="jotter", credentials={"token": "t"})


def test_an_installed_entry_point_is_found_and_built(jotter_installed: type) -> None:
    # given the example installed, when its connection is built
    connector = build(config())
    # expect the README's class, fulfilling the protocol, beside the shipped connectors
    assert jotter_installed.__name__ == "JotterConnector"
    assert isinstance(connector, Connector) and connector.name == "jotter"
    assert {"asana", "jotter", "salesforce", "slack"} <= set(available())


def test_an_unknown_name_lists_the_installed_ones(jotter_installed: type) -> None:
    with pytest.raises(UnknownConnector) as caught:
        connector_class("jottr")
    assert "no connector named 'jottr'" in str(caught.value)
    assert "asana, jotter, salesforce, slack" in str(caught.value)


def test_the_example_creates_updates_and_finds_through_its_api(jotter_installed: type) -> None:
    # given a stand-in for Jotter's API (a made-up provider has no SDK to talk to)
    notes: dict[str, dict[str, Any]] = {}

    def jotter(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            key = request.url.params["key"]
            return httpx.Response(
                200, json={"notes": [n for n in notes.values() if n["key"] == key]}
            )
        body = json.loads(request.content)
        note_id = (
            request.url.path.rsplit("/", 1)[-1] if request.method == "PUT" else str(len(notes) + 1)
        )
        notes[note_id] = {"id": note_id, "key": request.headers["Idempotency-Key"], **body}
        return httpx.Response(
            200, json={**notes[note_id], "url": f"https://jotter.example/{note_id}"}
        )

    connector: Any = build(config())
    connector.http = httpx.Client(
        base_url="https://jotter.example", transport=httpx.MockTransport(jotter)
    )
    op = Op.plan(
        org_id="o", meeting_id="m", connector="jotter", connection="team-jotter",
        action="note", item_key="recap", target={"folder": "Meetings"}, fields={"text": "hi"},
    )  # fmt: skip
    # when it is created, then updated, then looked for
    first = connector.apply(op, None)
    second = connector.apply(op.model_copy(update={"fields": {"text": "hello"}}), first)
    found = connector.find(op)
    # expect one note, updated in place, found by its key
    assert list(notes) == ["1"] and notes["1"]["text"] == "hello"
    assert second.external_id == first.external_id == found.external_id == "1"


@pytest.mark.parametrize(
    ("status", "headers", "error"),
    [
        pytest.param(429, {"Retry-After": "3"}, RateLimited, id="429"),
        pytest.param(401, {}, AuthExpired, id="401"),
        pytest.param(503, {}, Transient, id="503"),
        pytest.param(400, {}, Permanent, id="400"),
    ],
)
def test_the_example_maps_statuses_to_the_error_tree(
    jotter_installed: type, status: int, headers: dict[str, str], error: type
) -> None:
    error_for = sys.modules["jotter_connector"].error_for
    raised: object = error_for(httpx.Response(status, headers=headers, text="no"))
    assert type(raised) is error
    if isinstance(raised, RateLimited):
        assert raised.retry_after == 3.0
