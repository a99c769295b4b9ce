"""`meetsync orgs`: create, list, show, profile, and admin tokens stored only as hashes."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from admin.tokens import digest, org_of_token
from meetsync.db.models import AdminToken, Org
from tests.admin_cli import Cli, make_cli


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    return make_cli(tmp_path, monkeypatch)


def test_an_org_is_created_with_its_profile_and_shown(cli: Cli, tmp_path: Path) -> None:
    # given a profile file: what the org sells, its stages and glossary
    profile = tmp_path / "profile.yaml"
    profile.write_text(
        "sells: a cloud analytics platform\n"
        "stages: [Prospecting, Qualification, Closed Won]\n"
        "glossary: {POC: proof of concept}\n"
    )

    # when the org is created and shown
    cli.ok("orgs", "create", "acme", "--name", "Acme Analytics", "--profile", str(profile))
    shown = cli.ok("orgs", "show", "acme")
    listed = cli.ok("orgs", "list")

    # expect the profile stored as given and the org listed
    with cli.session() as session:
        org = session.get(Org, "acme")
        assert org is not None
        assert org.profile == {
            "sells": "a cloud analytics platform",
            "stages": ["Prospecting", "Qualification", "Closed Won"],
            "glossary": {"POC": "proof of concept"},
        }
    assert "POC: proof of concept" in shown and "mapping version: none" in shown
    assert listed.startswith("acme\tAcme Analytics\tno mapping")


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        pytest.param("stagez: [A]\n", "stagez: Extra inputs are not permitted", id="typo-key"),
        pytest.param("stages: Prospecting\n", "stages: Input should be a valid list", id="type"),
    ],
)
def test_a_bad_profile_is_refused_naming_the_key(
    cli: Cli, tmp_path: Path, profile: str, message: str
) -> None:
    # given a profile with a mistake
    path = tmp_path / "profile.yaml"
    path.write_text(profile)

    # when an org is created with it
    result = cli.fails("orgs", "create", "acme", "--profile", str(path))

    # expect the key and the problem named, and no org created
    assert message in result.stderr
    assert "acme" not in cli.ok("orgs", "list")


def test_an_org_id_is_created_once(cli: Cli) -> None:
    # given an org
    cli.ok("orgs", "create", "acme")

    # expect a second create of the same id refused
    assert "exists" in cli.fails("orgs", "create", "acme").stderr


def test_an_admin_token_is_shown_once_and_stored_as_a_hash(cli: Cli) -> None:
    # given an org
    cli.ok("orgs", "create", "acme")

    # when a token is minted
    output = cli.ok("orgs", "token", "acme", "--label", "ops")
    token = output.strip().splitlines()[-1]

    # expect only its SHA-256 in the database, and the token resolving to the org
    with cli.session() as session:
        (row,) = session.scalars(select(AdminToken)).all()
        assert row.token_hash == digest(token) and token not in row.token_hash
        found = org_of_token(session, token)
        assert found is not None and found.org_id == "acme" and found.label == "ops"
        assert org_of_token(session, token + "x") is None


def test_a_token_for_an_unknown_org_is_refused(cli: Cli) -> None:
    assert "no org 'nope'" in cli.fails("orgs", "token", "nope").stderr
