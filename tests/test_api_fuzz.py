"""Every operation of the served OpenAPI, fuzzed on PostgreSQL: no 5xx, no answer that
breaks its documented schema. Admin routes get acme's token (and, for most cases, acme in
the path), webhooks are signed, so requests reach validation and storage, not just auth."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from admin.tokens import mint_token
from intake.app import create_app
from intake.client import WEBHOOK_PATH, signed_headers
from meetsync.bootstrap import ensure_org
from meetsync.db.migrate import upgrade
from meetsync.db.session import engine_for, session_scope
from meetsync.settings import Settings
from sandbox.server import Sandbox
from sandbox.settings_for import settings_for
from tests.admin_cli import Cli, add_sandbox_connections
from workers.actors import declare
from workers.broker import make_broker
from workers.runtime import Runtime

SECRET = "whsec_ZnV6ei1zZWNyZXQtZm9yLXRoZS1vcGVuYXBpLXRlc3Q="
NAME = f"meetsync_fuzz_{os.getpid()}_{uuid.uuid4().hex[:8]}"
ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{NAME}"
TOKEN: dict[str, str] = {}

# schemathesis needs the app when the module loads; its database is made by the fixture
BASE = Settings(mode="demo", database_url=URL, webhook_secret=SECRET, connections={})
SERVED = create_app(BASE, declare(make_broker("stub"), Runtime(BASE)))
schema = schemathesis.openapi.from_asgi("/openapi.json", SERVED)


@pytest.fixture(scope="module", autouse=True)
def database(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A fresh PostgreSQL database: orgs acme and globex, acme's sandbox connections."""
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{NAME}"')
    try:
        upgrade(URL)
        SERVED.state.settings = settings_for(sandbox, base=BASE)
        monkeypatch = pytest.MonkeyPatch()
        monkeypatch.setenv("MEETSYNC_DATABASE_URL", URL)
        monkeypatch.setenv("MEETSYNC_CONNECTIONS", "{}")
        cli = Cli(monkeypatch, URL)
        for org in ("acme", "globex"):
            cli.ok("orgs", "create", org)
        add_sandbox_connections(cli, sandbox)
        monkeypatch.undo()
        with session_scope(URL) as session:
            ensure_org(session, "acme", "Acme")
            TOKEN["acme"] = mint_token(session, "acme").token
        yield
    finally:
        engine_for(URL).dispose()
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_request_gets_a_5xx_or_an_answer_outside_its_schema(case: Any) -> None:
    if case.path == WEBHOOK_PATH:
        try:
            body = json.dumps(case.body).encode()
        except TypeError:  # no body generated
            body = b""
        case.headers = {**(case.headers or {}), **signed_headers(SECRET, body)}
        response = case.call(data=body)
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
        return
    # most cases as acme's admin on acme's routes; the rest as generated
    params = case.path_parameters or {}
    if "org_id" in params and hash(json.dumps(params, sort_keys=True, default=str)) % 4:
        case.path_parameters["org_id"] = "acme"
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {TOKEN['acme']}"}
    case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])
