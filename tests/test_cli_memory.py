"""`meetsync memory …` and the admin API's memory routes: each source of memory (an admin,
an import file, the providers), located errors, and one org's memory kept from another's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from admin.tokens import mint_token
from intake.app import create_app
from sandbox.server import Sandbox
from tests.admin_cli import Cli, add_sandbox_connections, make_cli
from tests.test_admin_api import NoPipeline, auth

MEETING = {
    "org_id": "acme",
    "meeting_id": "m-1",
    "title": "Pipeline review",
    "start": "2026-11-17T15:00:00Z",
    "end": "2026-11-17T15:30:00Z",
    "transcript": [{"speaker": "John Smyth", "text": "I'll update the cooper netties doc."}],
}


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    made = make_cli(tmp_path, monkeypatch)
    made.ok("orgs", "create", "acme")
    return made


def test_an_admin_adds_lists_edits_and_deletes_entries(cli: Cli, tmp_path: Path) -> None:
    added = cli.ok(
        "memory", "add", "person", "Jon Smith", "--alias", "Jon", "--alias", "John Smyth",
        "--set", "email=jon@acme.io", "--set", "accounts=Globex,Initech", "--json",
    )  # fmt: skip
    jon = json.loads(added)[0]
    assert jon["data"]["accounts"] == ["Globex", "Initech"]
    cli.ok("memory", "add", "term", "Kubernetes", "--alias", "Cooper Netties")
    cli.ok("memory", "add", "commitment", "Send the proposal", "--set", "owner=Jon")
    listed = cli.ok("memory", "list", "--kind", "person")
    assert "Jon Smith" in listed and "Kubernetes" not in listed
    cli.ok("memory", "edit", jon["id"], "--set", "role=AE", "--alias", "Jonny")
    (path := tmp_path / "meeting.json").write_text(json.dumps(MEETING))
    recalled = cli.ok("memory", "recall", str(path))
    assert "- Jon Smith <jon@acme.io> (AE); also heard as: Jon | John Smyth | Jonny" in recalled
    assert "- Kubernetes; also heard as: Cooper Netties" in recalled
    assert "Send the proposal; owner: Jon Smith" in recalled
    deleted = cli.ok("memory", "delete", jon["id"])
    assert deleted.startswith("deleted 2 entries")  # Jon and his commitment
    assert cli.ok("memory", "list").count("\n") == 1


def test_a_second_claim_on_an_alias_fails_with_both_names(cli: Cli) -> None:
    cli.ok("memory", "add", "person", "Jon Smith", "--alias", "Jon")
    refused = cli.fails("memory", "add", "person", "Jonathan Park", "--alias", "jon")
    assert "'jon' already names person 'Jon Smith'" in refused.stderr


def test_an_import_is_all_or_nothing_and_an_export_reads_back(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump({"people": [{"name": "Ann Lee"}], "terms": [{"name": "X", "color": "red"}]})
    )
    refused = cli.fails("memory", "import", str(bad))
    assert "terms[0]: color: Extra inputs are not permitted" in refused.stderr
    assert cli.ok("memory", "list") == ""
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({"people": [{"name": "Ann Lee", "aliases": ["Anne"]}]}))
    assert cli.ok("memory", "import", str(good)).strip() == "imported 1 person"
    assert yaml.safe_load(cli.ok("memory", "export")) == yaml.safe_load(good.read_text())


def test_an_entry_for_an_unknown_org_is_refused(cli: Cli) -> None:
    refused = cli.fails("memory", "add", "term", "Globex", "--org", "initech")
    assert "no org 'initech'" in refused.stderr


def test_a_sync_brings_people_and_ids_from_the_providers(cli: Cli, sandbox: Sandbox) -> None:
    add_sandbox_connections(cli, sandbox)
    cli.ok("memory", "add", "person", "Dana Reyes", "--alias", "Dayna")
    synced = cli.run("memory", "sync")
    assert synced.exit_code == 0, synced.stderr
    for name in ("acme-asana", "acme-salesforce", "acme-slack"):
        assert f"{name}: " in synced.stdout and "people" in synced.stdout
    people = json.loads(cli.ok("memory", "list", "--kind", "person", "--json"))
    ids = {"asana_id", "salesforce_id", "slack_id"}
    with_all = [p for p in people if ids <= set(p["data"])]
    assert with_all, people  # one person per email, ids from every provider
    again = json.loads(cli.ok("memory", "list", "--kind", "person", "--json"))
    cli.ok("memory", "sync")
    assert len(json.loads(cli.ok("memory", "list", "--kind", "person", "--json"))) == len(again)


def test_the_api_keeps_each_orgs_memory_to_itself(cli: Cli) -> None:
    cli.ok("orgs", "create", "globex")
    with cli.session() as session:
        tokens = {org: mint_token(session, org).token for org in ("acme", "globex")}
    with TestClient(create_app(cli.settings(), NoPipeline())) as client:
        base = "/v1/admin/orgs/acme/memory"
        made = client.post(
            base,
            json={"kind": "person", "data": {"name": "Jon Smith"}},
            headers=auth(tokens["acme"]),
        )
        assert made.status_code == 201, made.text
        entry = made.json()["id"]
        assert client.get(base, headers=auth(tokens["globex"])).status_code == 403
        other = f"/v1/admin/orgs/globex/memory/{entry}"
        assert client.delete(other, headers=auth(tokens["globex"])).status_code == 404
        assert (
            client.patch(other, json={"role": "x"}, headers=auth(tokens["globex"])).status_code
            == 404
        )
        bad = client.post(
            f"{base}/import",
            json={"people": [{"name": "Ann"}, {"name": "Bo", "email": "nope"}]},
            headers=auth(tokens["acme"]),
        )
        assert bad.status_code == 422 and "people[1]: email" in bad.json()["detail"]
        listed = client.get(base, headers=auth(tokens["acme"])).json()
        assert [e["name"] for e in listed] == ["Jon Smith"]
        gone = client.delete(f"{base}/{entry}", headers=auth(tokens["acme"]))
        assert gone.json() == {"deleted": [entry]}
