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
from tests.test_memory_learning import edited

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


def test_what_review_taught_is_listed_with_its_source_suggested_and_undone(cli: Cli) -> None:
    url = cli.settings().database_url
    edited(url, "assignee_email", None, "sam@acme.io", owner="Sem")
    edited(url, "project", "Inbox", "Legal", meeting="m-1", label="Legal review of the MSA")
    edited(url, "project", "Inbox", "Legal", meeting="m-2", label="Send for legal review")

    # listed with where it came from and how to take it back
    listed = cli.ok("memory", "list", "--kind", "person")
    assert "Sam Patel\treview" in listed
    assert "learned alias 'Sem' → 'Sam Patel' (assignee_email) from review" in listed
    assert "by U1; undo: meetsync memory undo " in listed

    # the suggestion waits for the admin, then becomes a rule
    (suggestion,) = json.loads(cli.ok("memory", "suggestions", "--json"))
    assert "Reviewers set project to 'Legal'" in cli.ok("memory", "suggestions")
    (rule,) = json.loads(cli.ok("memory", "accept", suggestion["id"], "--json"))
    assert rule["data"]["when"]["item_text_contains"] == "legal review"
    assert cli.ok("memory", "suggestions") == "(no suggestions)\n"

    person = json.loads(cli.ok("memory", "list", "--kind", "person", "--json"))[0]
    undone = cli.ok("memory", "undo", person["learned"][0]["id"])
    assert undone.startswith("undone: learned alias 'Sem'")
    assert json.loads(cli.ok("memory", "list", "--kind", "person", "--json")) == []
    assert "nothing learned to undo" in cli.fails("memory", "undo", person["id"]).stderr


def test_the_api_offers_suggestions_and_undoes_lessons_of_its_own_org_only(cli: Cli) -> None:
    cli.ok("orgs", "create", "globex")
    url = cli.settings().database_url
    (lesson,) = edited(url, "assignee_email", None, "sam@acme.io", owner="Sem")
    edited(url, "project", "Inbox", "Legal", meeting="m-1")
    (suggestion,) = edited(url, "project", "Inbox", "Legal", meeting="m-2")
    with cli.session() as session:
        tokens = {org: mint_token(session, org).token for org in ("acme", "globex")}
    acme, globex = auth(tokens["acme"]), auth(tokens["globex"])
    with TestClient(create_app(cli.settings(), NoPipeline())) as client:
        base = "/v1/admin/orgs/acme/memory"
        (offered,) = client.get(f"{base}/suggestions", headers=acme).json()
        assert offered["id"] == suggestion.id and offered["rule"]["then"]["set"] == {
            "project": "Legal"
        }
        other = "/v1/admin/orgs/globex/memory"
        assert client.get(f"{other}/suggestions", headers=globex).json() == []
        assert (
            client.post(f"{other}/suggestions/{suggestion.id}/accept", headers=globex).status_code
            == 404
        )
        assert client.post(f"{other}/{lesson.id}/undo", headers=globex).status_code == 404
        declined = client.post(f"{base}/suggestions/{suggestion.id}/decline", headers=acme)
        assert declined.json()["state"] == "declined"
        (person,) = client.get(base, headers=acme).json()
        assert person["learned"][0]["decided_by"] == "U1"
        undone = client.post(f"{base}/{person['id']}/undo", headers=acme).json()
        assert [u["state"] for u in undone] == ["undone"]
        assert client.get(base, headers=acme).json() == []
