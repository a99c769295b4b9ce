"""The admin console in a real browser: Playwright drives Debian's headless Chromium.

Stories: sign in (a wrong token, then the right one) and out; break a mapping and see the
located error with its fix, fix it, preview it against a past meeting, save it, roll back;
add a connection whose test fails in the provider's words, pause, resume and rotate it;
a meeting's timeline; a dead letter retried; a held Salesforce change refused in the Edit
form, then approved and written once; an experiment's arms compared and one promoted;
another org's ids answer 404; a forged form, an expired session and a mapping too large
each say so on the page and change nothing.
Screenshots of the main pages land in docs/console/.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import select

from admin import experiments
from admin.meeting_store import store_meeting
from admin.tokens import mint_token
from intake.app import create_app
from intake.console import session as sessions
from intake.serving import BackgroundServer
from meetsync.db.models import (
    Connection,
    InsightRecord,
    MappingVersion,
    Meeting,
    OpRecord,
    ReviewRequest,
)
from meetsync.models import MeetingOutput
from meetsync.settings import LLMSettings
from sandbox.client import SandboxClient
from sandbox.server import Sandbox
from tests.admin_cli import SECRETS, SLACK_TOKEN, Cli, add_sandbox_connections, make_cli
from tests.test_admin_preview import INSIGHTS, MEETING
from tests.test_experiments import _decided, _extracted, _rated, spec
from tests.test_review import globex, opportunity_writes, review_mapping
from workers import pushing, stages
from workers.review_ask import prepare
from workers.review_message import expire
from workers.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]
ACME = ROOT / "mappings" / "examples" / "acme.yaml"
SHOTS = ROOT / "docs" / "console"
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
LAPTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # never skipped: CI installs Debian's chromium (.ci/run) before the tests
    assert Path(CHROMIUM).exists(), "install Debian's chromium: apt-get install -y chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@dataclass
class Pipeline:
    """Stands in for the broker: records what the console sends on to the workers."""

    extracted: list[str] = field(default_factory=list)
    pushed: list[str] = field(default_factory=list)
    refreshed: list[str] = field(default_factory=list)

    def enqueue_extract(
        self, meeting_id: str, *, backfill: bool = False, org: str | None = None
    ) -> None:
        self.extracted.append(meeting_id)

    def enqueue_ops(self, keys: list[str]) -> int:
        self.pushed.extend(keys)
        return len(keys)

    def enqueue_review_refresh(self, meeting_id: str) -> None:
        self.refreshed.append(meeting_id)


@dataclass
class World:
    cli: Cli
    url: str
    tokens: dict[str, str]
    meeting_id: str
    globex_meeting: str
    pipeline: Pipeline
    sandbox: Sandbox

    def versions(self) -> list[int]:
        with self.cli.session() as session:
            return list(session.scalars(select(MappingVersion.version).order_by("version")))


@pytest.fixture
def world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_sandbox: Sandbox
) -> Iterator[World]:
    """Orgs acme (its sandbox connections, the example mapping, one extracted meeting) and
    globex (a meeting of its own), an admin token each, and the app served on loopback."""
    cli = make_cli(tmp_path, monkeypatch)
    cli.ok("orgs", "create", "acme")
    cli.ok("orgs", "create", "globex")
    add_sandbox_connections(cli, clean_sandbox)
    cli.ok("mappings", "apply", str(ACME))
    other = MEETING.model_copy(update={"org_id": "globex", "meeting_id": "globex-secret"})
    with cli.session() as session:
        stored = store_meeting(session, MEETING)
        session.add(
            InsightRecord(
                meeting_id=stored.meeting_id,
                cache_key="given",
                insights=INSIGHTS.model_dump(mode="json"),
            )
        )
        globex = store_meeting(session, MeetingOutput.model_validate(other.model_dump()))
        session.add(
            InsightRecord(
                meeting_id=globex.meeting_id,
                cache_key="given",
                insights=INSIGHTS.model_dump(mode="json"),
            )
        )
        tokens = {org: mint_token(session, org, f"{org} admin").token for org in ("acme", "globex")}
    pipeline = Pipeline()
    with BackgroundServer(create_app(cli.settings(), pipeline)) as server:
        yield World(
            cli, server.url, tokens, stored.meeting_id, globex.meeting_id, pipeline, clean_sandbox
        )


@pytest.fixture
def page(browser: Browser, world: World) -> Iterator[Page]:
    context = browser.new_context(base_url=world.url, viewport=LAPTOP)
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    yield opened
    context.close()


def sign_in(page: Page, token: str) -> None:
    page.goto("/console/sign-in")
    page.get_by_label("Your org's admin token").fill(token)
    page.get_by_role("button", name="Sign in").click()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def post(page: Page, path: str, form: str, *, csrf: bool = True) -> tuple[int, str]:
    """A form POST from the signed-in page's own origin, with or without its CSRF token."""
    result = page.evaluate(
        """async ([path, form, csrf]) => {
            const headers = {"Content-Type": "application/x-www-form-urlencoded"};
            if (csrf) headers["X-CSRF-Token"] = JSON.parse(
                document.body.getAttribute("hx-headers"))["X-CSRF-Token"];
            const r = await fetch(path, {method: "POST", headers, body: form, redirect: "manual"});
            return [r.status, await r.text()];
        }""",
        [path, form, csrf],
    )
    return int(result[0]), str(result[1])


def test_sign_in_refuses_a_wrong_token_then_signs_in_and_out(page: Page, world: World) -> None:
    # given a wrong token
    sign_in(page, "msk_not-a-real-token")
    expect(page.get_by_role("alert")).to_contain_text("That admin token is not valid")
    shot(page, "sign-in")

    # when the right one is given
    sign_in(page, world.tokens["acme"])

    # expect the org's home, and a session cookie the page's scripts cannot read
    expect(page.get_by_role("heading", level=1)).to_have_text("acme")
    cookie = next(c for c in page.context.cookies() if c["name"] == sessions.COOKIE)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert world.tokens["acme"] not in cookie["value"]
    assert page.evaluate("document.cookie") == ""

    # when signed out, expect every page to ask for a sign-in again
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_contain_text("You are signed out")
    page.goto("/console/connections")
    assert page.url.endswith("/console/sign-in")


def test_a_mapping_is_broken_fixed_previewed_saved_and_rolled_back(
    page: Page, world: World
) -> None:
    sign_in(page, world.tokens["acme"])
    page.get_by_role("navigation").get_by_role("link", name="Mapping").click()
    editor = page.get_by_label("Mapping (YAML)")
    expect(page.locator("#problems")).to_contain_text("No problems found")
    good = editor.input_value()

    # when the admin types a typo into an action item's field
    editor.fill(good.replace("{from: item.title", "{from: item.titel", 1))

    # expect the error located on its line, with the fix, and the line marked in the gutter
    problem = page.locator("#problems .problem").first
    expect(problem).to_contain_text("item has no 'titel'")
    expect(problem).to_contain_text("Fix: did you mean 'title'?")
    line = good.splitlines().index(next(x for x in good.splitlines() if "item.title" in x)) + 1
    expect(problem.get_by_role("button", name=f"go to line {line}")).to_be_visible()
    expect(page.locator("#gutter li.bad")).to_have_text(str(line))
    # and the problem's button takes the caret to that line, selected
    problem.get_by_role("button", name=f"go to line {line}").click()
    selected = page.evaluate(
        "(b => b.value.slice(b.selectionStart, b.selectionEnd))(document.activeElement)"
    )
    assert "item.titel" in selected
    shot(page, "mapping-error")

    # when it is fixed and a change made instead, then previewed against the stored meeting
    changed = good.replace("Priority: Normal", "Priority: High", 1)
    assert changed != good
    editor.fill(changed)
    expect(page.locator("#problems")).to_contain_text("No problems found")
    page.get_by_label("Against a past meeting").select_option(world.meeting_id)
    page.get_by_role("button", name="Preview this draft").click()

    # expect current → new per record, read from the providers, with nothing written
    preview = page.locator("#preview")
    expect(preview).to_contain_text("Nothing was written")
    next_step = preview.locator("tr", has_text="NextStep")
    expect(next_step).to_contain_text("Technical deep dive with the data team")
    expect(preview.locator("tr", has_text="Priority").first).to_contain_text("High")
    shot(page, "mapping-preview")

    # when the field picker describes the Opportunity, expect its fields and picklist values
    page.get_by_label("Connection").select_option("acme-salesforce")
    page.get_by_label("Object, project or channel").fill("Opportunity")
    page.get_by_role("button", name="Describe").click()
    stage = page.locator("#describe tr", has_text="StageName")
    expect(stage).to_contain_text("Closed Won")
    with world.cli.session() as session:
        assert session.scalars(select(OpRecord)).all() == []

    # when saved with a comment
    page.get_by_label("What changed").fill("high priority for meeting logs")
    page.get_by_role("button", name="Save as a new version").click()

    # expect version 2 with its diff in the history
    expect(page.get_by_role("status")).to_contain_text("Saved as version 2")
    current = page.locator("#v2")
    expect(current).to_contain_text("high priority for meeting logs")
    expect(current.locator(".diff .add")).to_have_text(["+++ version 2", "+      Priority: High"])
    shot(page, "mapping-history")

    # when rolled back to version 1
    page.get_by_role("button", name="Roll back to version 1").click()

    # expect version 3 holding version 1's body
    expect(page.get_by_role("status")).to_contain_text("Rolled back: stored as version 3")
    assert world.versions() == [1, 2, 3]
    with world.cli.session() as session:
        bodies = dict(session.execute(select(MappingVersion.version, MappingVersion.body)).all())
    assert bodies[3] == bodies[1] == ACME.read_text()


def test_a_connection_that_fails_shows_the_providers_words_and_is_paused_and_rotated(
    page: Page, world: World
) -> None:
    sign_in(page, world.tokens["acme"])
    page.goto("/console/connections")

    # given a Slack connection added with a revoked-looking token
    page.get_by_label("Name").fill("acme-slack-2")
    page.get_by_label("Provider").select_option("slack")
    page.get_by_label("Base URL").fill(world.sandbox.urls["slack"])
    page.get_by_label("Credentials, key=value a line").fill("bot_token=xoxb-wrong-token")
    page.get_by_role("button", name="Add connection").click()
    expect(page.get_by_role("status")).to_contain_text("added acme-slack-2")
    card = page.locator("#conn-acme-slack-2")
    page.wait_for_load_state()

    # when tested
    card.get_by_role("button", name="Test now").click()

    # expect the failure in Slack's own words, and no credential anywhere on the page
    expect(card.locator(".report")).to_contain_text("Fails")
    expect(card.locator(".report")).to_contain_text("invalid_auth")
    shot(page, "connections")
    html = page.content()
    assert "xoxb-wrong-token" not in html and all(secret not in html for secret in SECRETS)

    # when paused, then resumed
    card.get_by_role("button", name="Pause").click()
    expect(card.locator(".badge")).to_have_text("paused")
    card.get_by_role("button", name="Resume").click()
    expect(card.locator(".badge")).to_have_text("active")

    # when its credentials are rotated to the right token, expect its test to pass
    card.get_by_text("Rotate credentials").click()
    card.get_by_label("New credentials").fill(f"bot_token={SLACK_TOKEN}")
    card.get_by_role("button", name="Replace credentials").click()
    expect(page.get_by_role("status")).to_contain_text("rotated acme-slack-2")
    page.wait_for_load_state()
    card.get_by_role("button", name="Test now").click()
    expect(card.locator(".report")).to_contain_text("Works")
    assert SLACK_TOKEN not in page.content()


def test_a_meetings_timeline_and_a_dead_letter_retried(page: Page, world: World) -> None:
    # given the meeting planned and pushed to the sandbox providers by the pipeline's stages
    runtime = Runtime(world.cli.settings())
    for planned in stages.plan(runtime, world.meeting_id):
        assert pushing.push(runtime, planned.key).state == "done"
    with world.cli.session() as session:
        task = session.scalars(
            select(OpRecord).where(OpRecord.connector == "asana", OpRecord.state == "done")
        ).first()
        assert task is not None and task.url
        task_url, task_title = task.url, (task.item or {})["title"]
    # and another op of the meeting that failed at the provider
    with world.cli.session() as session:
        session.add(
            OpRecord(
                key="k" * 64,
                org_id="acme",
                meeting_id=world.meeting_id,
                connector="asana",
                connection="acme-asana",
                action="upsert_task",
                target={"project": "Customer Follow-ups"},
                fields={"name": "Send the security questionnaire"},
                payload_hash="p" * 64,
                state="failed",
                attempts=1,
                last_error="Permanent: asana 403: Not a member of the project",
                item={
                    "title": "Send the security questionnaire",
                    "evidence": "I'll send you the security questionnaire by Friday.",
                },
            )
        )
    sign_in(page, world.tokens["acme"])

    # when the meeting is found by search and opened
    page.goto("/console/meetings")
    page.get_by_label("Search by title or id").fill("globex discovery")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Globex discovery call").click()

    # expect its timeline: extracted values with their quotes, the failed op in Asana's words
    timeline = page.locator(".timeline")
    expect(timeline).to_contain_text("Technical deep dive with the data team")
    expect(timeline).to_contain_text("“Next step is a technical deep dive.”")
    expect(timeline.locator(".op-failed")).to_contain_text("Not a member of the project")
    done = timeline.locator(".op-done", has_text=task_title).first
    expect(done.get_by_role("link", name="open in asana")).to_have_attribute("href", task_url)
    shot(page, "meeting-timeline")

    # when re-run, expect it sent to extraction
    page.get_by_role("button", name="Re-run this meeting").click()
    expect(page.get_by_role("status")).to_contain_text("Sent to extraction again")
    assert world.pipeline.extracted == [world.meeting_id]

    # when the dead letter is retried
    page.get_by_role("navigation").get_by_role("link", name="Dead letters").click()
    expect(page.locator(".letter")).to_contain_text("Not a member of the project")
    shot(page, "dead-letters")
    page.get_by_role("button", name="Retry asana upsert_task").click()

    # expect it back in line and sent to its push queue
    expect(page.get_by_role("status")).to_contain_text("Retried 1 op")
    with world.cli.session() as session:
        # it was attempted once, so it goes back in doubt: its push looks before it writes
        assert session.get(OpRecord, "k" * 64).state == "sending"  # type: ignore[union-attr]
    assert world.pipeline.pushed == ["k" * 64]


def test_another_orgs_ids_answer_404(page: Page, world: World) -> None:
    # given globex's meeting, connection and op, and acme signed in
    world.cli.ok(
        "connections", "add", "globex-slack", "--org", "globex", "--provider", "slack",
        "--base-url", world.sandbox.urls["slack"], "--credential", f"bot_token={SLACK_TOKEN}",
    )  # fmt: skip
    with world.cli.session() as session:
        session.add(
            OpRecord(key="g" * 64, org_id="globex", meeting_id=world.globex_meeting,
                     connector="slack", connection="globex-slack", action="post_message",
                     payload_hash="p" * 64, state="failed", last_error="globex's secret")
        )  # fmt: skip
    sign_in(page, world.tokens["acme"])

    # when acme opens or acts on globex's ids, expect 404 and nothing of globex shown or changed
    response = page.goto(f"/console/meetings/{world.globex_meeting}")
    assert response is not None and response.status == 404
    expect(page.get_by_role("alert")).to_contain_text("no meeting")
    for path, form in [
        ("/console/connections/globex-slack/test", ""),
        ("/console/connections/globex-slack/pause", ""),
        (f"/console/meetings/{world.globex_meeting}/rerun", ""),
        ("/console/dead-letters/retry", "keys=" + "g" * 64),
    ]:
        status, text = post(page, path, form)
        assert status == 404, (path, status)
        assert "globex's secret" not in text
    page.goto("/console/meetings")
    assert "globex-secret" not in page.content()
    with world.cli.session() as session:
        assert session.get(Connection, "globex-slack").status == "active"  # type: ignore[union-attr]
        assert session.get(OpRecord, "g" * 64).state == "failed"  # type: ignore[union-attr]
    assert world.pipeline.extracted == []


def test_a_forged_form_an_expired_session_and_a_mapping_too_large_change_nothing(
    page: Page, world: World
) -> None:
    sign_in(page, world.tokens["acme"])

    # when a form is posted without the CSRF token, expect 403 and no version stored
    status, text = post(page, "/console/mappings", "body=org%3A+acme", csrf=False)
    assert status == 403 and "CSRF token" in text
    assert world.versions() == [1]

    # when the mapping pasted is far too large, expect a clear refusal and nothing stored
    page.goto("/console/mappings")
    huge = ACME.read_text() + "#" + "x" * 250_000 + "\n"
    page.evaluate("text => { document.getElementById('body').value = text; }", huge)
    page.get_by_role("button", name="Save as a new version").click()
    expect(page.get_by_role("alert").first).to_have_text("Not saved: fix the problems below.")
    expect(page.locator("#problems")).to_contain_text("may be at most 200,000")
    assert world.versions() == [1]

    # when the session has expired, expect the sign-in page saying so
    settings = world.cli.settings()
    cookie = next(c for c in page.context.cookies() if c["name"] == sessions.COOKIE)
    old = sessions.decode(settings, cookie["value"])
    expired = sessions.ConsoleSession(
        old.org_id, old.token_id, old.label, int(time.time()) - 1, old.nonce
    )
    page.context.add_cookies(
        [{**cookie, "value": sessions.encode(settings, expired)}]  # type: ignore[list-item]
    )
    page.goto("/console/mappings")
    expect(page.get_by_role("status")).to_contain_text("Your session expired")


def test_a_preview_that_times_out_at_the_provider_says_so(page: Page, world: World) -> None:
    # given Salesforce that answers nothing, and a connection that waits 1 s for it
    with world.cli.session() as session:
        row = session.get(Connection, "acme-salesforce")
        assert row is not None
        row.options = {**row.options, "timeout": 1}
    salesforce = SandboxClient(world.sandbox.origins["salesforce"], verify=world.sandbox.ca_file)
    salesforce.arm("timeout", times=None, path="/services/data/*/query*", hold=5)
    sign_in(page, world.tokens["acme"])
    page.goto("/console/mappings")

    # when a preview is asked for
    page.get_by_label("Against a past meeting").select_option(world.meeting_id)
    page.get_by_role("button", name="Preview this draft").click()

    # expect each Salesforce record's current values said to be unknown for the timeout,
    # the new values still shown, and nothing written
    note = page.locator("#preview .op", has_text="salesforce").first.locator(".error")
    expect(note).to_contain_text("current values unknown", timeout=30_000)
    expect(note).to_contain_text("timed out")
    expect(page.locator("#preview tr", has_text="NextStep")).to_contain_text("Technical deep dive")
    with world.cli.session() as session:
        assert session.scalars(select(OpRecord)).all() == []


def test_the_console_on_a_phone(browser: Browser, world: World) -> None:
    context = browser.new_context(base_url=world.url, viewport=PHONE, is_mobile=True)
    phone = context.new_page()
    sign_in(phone, world.tokens["acme"])
    phone.goto("/console/mappings")
    expect(phone.locator("#problems")).to_contain_text("No problems found")
    # nothing wider than the screen but the editor and tables, which scroll in place
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"]
    shot(phone, "mapping-phone")
    # keyboard: the skip link is the first stop and leads to the main content
    phone.keyboard.press("Tab")
    expect(phone.get_by_role("link", name="Skip to content")).to_be_focused()
    context.close()


RECAP = """
  - name: recap
    connector: slack
    action: post_message
    target:
      channel: "#sales-meetings"
    fields:
      title: "{{ meeting.title }}"
      summary: {from: meeting.summary}
      meeting_url: "{{ meeting.url }}"
      action_items:
        from: insights.action_items
        transform: [{pick: [title, owner, due_date]}]
"""


def test_an_admin_goes_from_an_empty_org_to_a_saved_previewed_mapping(
    page: Page, world: World
) -> None:
    # given globex: no connection, no mapping, one meeting delivered by the notes pipeline
    sign_in(page, world.tokens["globex"])
    expect(page.get_by_role("main")).to_contain_text("none yet: write one and preview it")

    # when its admin adds a Slack connection and tests it
    page.get_by_role("navigation").get_by_role("link", name="Connections").click()
    page.get_by_label("Name").fill("globex-slack")
    page.get_by_label("Provider").select_option("slack")
    page.get_by_label("Base URL").fill(world.sandbox.urls["slack"])
    page.get_by_label("Credentials, key=value a line").fill(f"bot_token={SLACK_TOKEN}")
    page.get_by_role("button", name="Add connection").click()
    card = page.locator("#conn-globex-slack")
    page.wait_for_load_state()  # htmx has wired the buttons
    card.get_by_role("button", name="Test now").click()
    expect(card.locator(".report")).to_contain_text("Works")

    # and starts from the editor's first mapping, which names that connection
    page.get_by_role("navigation").get_by_role("link", name="Mapping").click()
    editor = page.get_by_label("Mapping (YAML)")
    start = editor.input_value()
    assert "org: globex" in start and "slack: globex-slack" in start
    editor.fill(start.replace("destinations: []", "destinations:" + RECAP))
    expect(page.locator("#problems")).to_contain_text("No problems found")

    # and previews it against the meeting, then saves it
    page.get_by_label("Against a past meeting").select_option(world.globex_meeting)
    page.get_by_role("button", name="Preview this draft").click()
    expect(page.locator("#preview")).to_contain_text("slack · post_message")
    expect(page.locator("#preview tr", has_text="title").first).to_contain_text(
        "Globex discovery call"
    )
    page.get_by_role("button", name="Save as a new version").click()

    # expect globex's version 1, and acme's mapping untouched
    expect(page.get_by_role("status")).to_contain_text("Saved as version 1")
    with world.cli.session() as session:
        rows = session.execute(select(MappingVersion.org_id, MappingVersion.version)).all()
    assert sorted(rows) == [("acme", 1), ("globex", 1)]


def hold_the_opportunity_update(
    world: World, tmp_path: Path, *, tasks: bool = False, **policy: str
) -> Runtime:
    """acme's mapping holding the Opportunity update (and the tasks, the log) for the host,
    and the meeting (its quote placed in the transcript) planned and read against records."""
    held = {"opportunity-update": {"mode": "approve", "approvers": ["host"], **policy}}
    if tasks:
        held["customer-followups"] = {"approvers": ["host"]}
        held["meeting-log"] = {"approvers": ["host"]}
    world.cli.ok("mappings", "apply", str(review_mapping(tmp_path, held)))
    with world.cli.session() as session:
        meeting = session.get(Meeting, world.meeting_id)
        record = session.scalars(
            select(InsightRecord).where(InsightRecord.meeting_id == world.meeting_id)
        ).one()
        assert meeting is not None
        lines = [dict(line) for line in meeting.payload["transcript"]]
        lines[2]["start"] = 754  # 12:34 into the meeting
        meeting.payload = {**meeting.payload, "transcript": lines}
        span = {"utterance_index": 2, "start": 0, "end": 35, "score": 1.0}
        record.insights = {**record.insights, "evidence": {"/crm/next_steps": span}}
    runtime = Runtime(world.cli.settings())
    stages.plan(runtime, world.meeting_id)
    prepare(runtime, world.meeting_id)
    return runtime


def test_a_held_change_is_refused_in_the_edit_form_then_approved_and_written_once(
    page: Page, world: World, tmp_path: Path
) -> None:
    # given a mapping that holds the Opportunity update for the host's approval, and the
    # meeting planned: the change waits in the ledger, read against its record
    runtime = hold_the_opportunity_update(world, tmp_path)
    with world.cli.session() as session:
        request = session.scalars(select(ReviewRequest)).one()
        request_id, op_key = request.id, str(request.op_key)
    before = globex(world.sandbox)["NextStep"]
    sign_in(page, world.tokens["acme"])

    # when the admin opens the review queue
    page.get_by_role("navigation").get_by_role("link", name="Review").click()

    # expect the change: the record, field, current → proposed, the quote and who said it
    change = page.locator(f"#r-{request_id}")
    row = change.locator("tr", has_text="NextStep")
    expect(row).to_contain_text("Technical deep dive with the data team")
    expect(row).to_contain_text("approval required")
    expect(change.locator("blockquote")).to_contain_text(
        "“Next step is a technical deep dive.” — Dana Reyes at 12:34"
    )
    record = change.get_by_role("link", name="Opportunity Globex discovery call", exact=True)
    expect(record).to_have_attribute("href", re.compile(r"/lightning/r/Opportunity/\w+/view$"))
    shot(page, "review")

    # when edited with a value Salesforce refuses (NextStep holds 255 characters)
    change.get_by_role("link", name="Edit").click()
    next_step = page.get_by_label("NextStep")
    expect(next_step).to_have_value("Technical deep dive with the data team")
    next_step.fill("x" * 300)
    page.get_by_role("button", name="Write").click()

    # expect the provider's limit under the field, the form still there, nothing written
    expect(page.locator(".field-error")).to_contain_text("at most 255 characters")
    expect(page.get_by_label("NextStep")).to_have_value("x" * 300)
    assert world.pipeline.pushed == [] and opportunity_writes(world.sandbox) == 0
    with world.cli.session() as session:
        assert session.get(ReviewRequest, request_id).state == "pending"  # type: ignore[union-attr]

    # when it is approved as proposed instead
    page.get_by_role("link", name="Cancel").click()
    page.locator(f"#r-{request_id}").get_by_role("button", name="Approve").click()

    # expect it released to its push queue, and written once when the push runs
    expect(page.get_by_role("status")).to_contain_text("Approved.")
    expect(page.get_by_role("main")).to_contain_text("Nothing waits for review")
    assert world.pipeline.pushed == [op_key]
    assert world.pipeline.refreshed == [world.meeting_id]
    assert pushing.push(runtime, op_key).state == "done"
    assert globex(world.sandbox)["NextStep"] == "Technical deep dive with the data team" != before
    assert opportunity_writes(world.sandbox) == 1

    # when the same change is approved again (a stale page): told so, nothing more happens
    status, text = post(page, f"/console/review/{request_id}/approve", "")
    assert status == 409 and "Already approved by acme admin" in text
    assert world.pipeline.pushed == [op_key]
    assert pushing.push(runtime, op_key).state == "done"
    assert opportunity_writes(world.sandbox) == 1

    # expect the meeting's timeline to say who decided it and when
    page.goto(f"/console/meetings/{world.meeting_id}")
    decision = page.locator(".op-done .decision")
    expect(decision).to_contain_text("approved")
    expect(decision).to_contain_text("by acme admin")


def test_the_review_queue_shows_and_decides_nothing_of_another_org(
    page: Page, world: World, tmp_path: Path
) -> None:
    # given acme's change held for approval, and globex signed in
    hold_the_opportunity_update(world, tmp_path)
    with world.cli.session() as session:
        request_id = session.scalars(select(ReviewRequest.id)).one()
    sign_in(page, world.tokens["globex"])

    # expect globex's queue empty, and acme's ids answering 404 to every form
    page.goto("/console/review")
    expect(page.get_by_role("main")).to_contain_text("Nothing waits for review")
    response = page.goto(f"/console/review/{request_id}/edit")
    assert response is not None and response.status == 404
    for path, form in [
        (f"/console/review/{request_id}/approve", ""),
        (f"/console/review/{request_id}/skip", ""),
        (f"/console/review/{request_id}/answer", "choice=x"),
        (f"/console/review/{request_id}/edit", "field%3ANextStep=mine"),
        (f"/console/review/meetings/{world.meeting_id}/approve-all", ""),
    ]:
        status, text = post(page, path, form)
        assert status == 404, (path, status)
        assert "Technical deep dive" not in text

    # and acme's own form without its CSRF token changes nothing either
    sign_in(page, world.tokens["acme"])
    page.goto("/console/review")
    status, text = post(page, f"/console/review/{request_id}/approve", "", csrf=False)
    assert status == 403 and "CSRF token" in text
    with world.cli.session() as session:
        assert session.get(ReviewRequest, request_id).state == "pending"  # type: ignore[union-attr]
    assert world.pipeline.pushed == []


def test_a_change_that_expires_on_an_open_page_says_so_and_the_timeline_shows_it(
    page: Page, world: World, tmp_path: Path
) -> None:
    # given a change that waits one second, open on the review page
    runtime = hold_the_opportunity_update(world, tmp_path, expire_after="1s")
    sign_in(page, world.tokens["acme"])
    page.goto("/console/review")
    approve = page.get_by_role("button", name="Approve Opportunity Globex discovery call")
    expect(approve).to_be_visible()

    # when it runs out (the sweeper records it skipped) and then Approve is clicked
    time.sleep(1.1)
    assert expire(runtime, world.meeting_id).count == 1
    approve.click()

    # expect the page to say it expired, and nothing released or written
    expect(page.get_by_role("alert")).to_contain_text("expired")
    expect(page.get_by_role("alert")).to_contain_text("nothing was written")
    assert world.pipeline.pushed == [] and opportunity_writes(world.sandbox) == 0

    # and the meeting's timeline to show the op skipped by the expiry
    page.goto(f"/console/meetings/{world.meeting_id}")
    decision = page.locator(".op-skipped .decision")
    expect(decision).to_contain_text("expired")
    expect(decision).to_contain_text("so it was skipped; nothing was written")


def test_an_edit_a_skip_and_approve_all_each_decide_once_and_the_timeline_says_who(
    page: Page, world: World, tmp_path: Path
) -> None:
    # given the Opportunity update, the meeting's log and both follow-up tasks held
    hold_the_opportunity_update(world, tmp_path, tasks=True)
    with world.cli.session() as session:
        keys = {
            f"{r.proposal['object']} {r.proposal['label']}": str(r.op_key)
            for r in session.scalars(select(ReviewRequest))
        }
    assert len(keys) == 4
    sign_in(page, world.tokens["acme"])
    page.goto("/console/review")
    expect(page.locator("article.change")).to_have_count(4)

    # when the Opportunity is edited with values Salesforce takes
    page.get_by_role("link", name="Edit Opportunity Globex discovery call").click()
    page.get_by_label("NextStep").fill("Deep dive with Globex's data team on Dec 3")
    page.get_by_label("StageName").select_option("Needs Analysis")
    page.get_by_role("button", name="Write").click()
    expect(page.get_by_role("status")).to_contain_text("Edited.")

    # and the meeting's log skipped, then the two tasks approved all at once
    page.get_by_role("button", name="Skip Task Globex discovery call").click()
    expect(page.get_by_role("status")).to_contain_text("Skipped.")
    page.get_by_role("button", name="Approve all 2 changes of this meeting").click()
    expect(page.get_by_role("status")).to_contain_text("Approved 2 change(s).")
    expect(page.get_by_role("main")).to_contain_text("Nothing waits for review")

    # expect the edited and the approved ops released once each, the skipped one never
    skipped = keys.pop("Task Globex discovery call")
    assert sorted(world.pipeline.pushed) == sorted(keys.values())
    with world.cli.session() as session:
        verdicts = {str(r.op_key): r.state for r in session.scalars(select(ReviewRequest))}
        log = session.get(OpRecord, skipped)
        assert log is not None and log.state == "skipped"
    assert verdicts[skipped] == "skipped"
    assert verdicts[keys["Opportunity Globex discovery call"]] == "edited"
    assert sorted(verdicts.values()).count("approved") == 2

    # and the timeline to say who decided what, with what the edit changed
    page.goto(f"/console/meetings/{world.meeting_id}")
    edited = page.locator(".decision", has_text="edited")
    expect(edited).to_contain_text("by acme admin")
    expect(edited).to_contain_text(
        "NextStep: proposed “Technical deep dive with the data team”, "
        "written “Deep dive with Globex's data team on Dec 3”"
    )
    expect(page.locator(".op-skipped .decision")).to_contain_text("nothing was written")


def test_a_question_is_answered_not_edited(page: Page, world: World) -> None:
    # given a follow-up task held because two people could own it
    with world.cli.session() as session:
        session.add(
            OpRecord(key="q" * 64, org_id="acme", meeting_id=world.meeting_id,
                     connector="asana", connection="acme-asana", action="upsert_task",
                     target={"project": "Customer Follow-ups"},
                     fields={"name": "Send the pricing sheet", "assignee": "srivera@acme.io"},
                     payload_hash="h" * 64, state="awaiting_review",
                     item={"title": "Send the pricing sheet"})
        )  # fmt: skip
        question = ReviewRequest(
            org_id="acme", meeting_id=world.meeting_id, kind="clarify", op_key="q" * 64,
            payload_hash="h" * 64, destination="customer-followups",
            proposal={"question": "Who will send the pricing sheet?", "field": "assignee",
                      "object": "Customer Follow-ups", "label": "Send the pricing sheet",
                      "choices": [{"value": "srivera@acme.io", "label": "Sam Rivera"},
                                  {"value": "sam@acme.io", "label": "Sam Patel"}]},
        )  # fmt: skip
        session.add(question)
        session.flush()
        request_id = question.id
    sign_in(page, world.tokens["acme"])
    page.goto("/console/review")

    # expect the question with its choices, and no Edit for it (nor through a form sent anyway)
    card = page.locator(f"#r-{request_id}")
    expect(card).to_contain_text("Who will send the pricing sheet?")
    expect(card.get_by_role("link", name="Edit")).to_have_count(0)
    status, text = post(page, f"/console/review/{request_id}/edit", "field%3Aassignee=x")
    assert status == 409 and "A question is answered, not edited" in text
    assert world.pipeline.pushed == []

    # when answered
    card.get_by_label("Answer").select_option(label="Sam Patel")
    card.get_by_role("button", name="Answer").click()

    # expect the task to take the answer and go
    expect(page.get_by_role("status")).to_contain_text("Answered.")
    assert world.pipeline.pushed == ["q" * 64]
    with world.cli.session() as session:
        row = session.get(OpRecord, "q" * 64)
        assert row is not None and row.state == "planned"
        assert row.fields["assignee"] == "sam@acme.io"


def run_an_experiment(world: World) -> None:
    """acme's experiment items-v2 (control against prompt v2), 12 meetings an arm, each
    with a review decision and two ratings: control mostly liked, v2 less so."""
    with world.cli.session() as session:
        experiments.create(session, spec(orgs=["acme"]), LLMSettings(), who="ops")
        for arm, liked in (("control", 10), ("v2", 6)):
            for i in range(12):
                meeting = _extracted(session, arm)
                _decided(session, meeting, "approved" if i < liked else "edited")
                _rated(session, meeting, "up" if i < liked else "down", "ana@acme.test")
                _rated(session, meeting, "up", "ben@acme.test")


def test_an_experiments_arms_are_compared_and_it_is_stopped(page: Page, world: World) -> None:
    # given acme's experiment with ratings and decisions on both arms
    run_an_experiment(world)
    sign_in(page, world.tokens["acme"])

    # when the admin opens it from the nav
    page.get_by_role("link", name="Experiments").click()
    expect(page.get_by_role("row", name=re.compile("items-v2"))).to_contain_text("50 %")
    page.get_by_role("link", name="items-v2").click()

    # expect both arms in the table and the chart, with rates and their intervals
    table = page.get_by_role("table")
    expect(table.get_by_role("row", name=re.compile("^control"))).to_contain_text("22/24")
    expect(table.get_by_role("row", name=re.compile("^v2"))).to_contain_text("18/24")
    expect(table).to_contain_text("Against control")
    expect(page.get_by_role("img", name=re.compile("rating rate per arm"))).to_be_visible()
    shot(page, "experiments")

    # expect no promotion from the console: task defaults are every org's (an operator's call)
    expect(page.get_by_role("button", name="Promote v2")).to_have_count(0)

    # when the admin stops it, expect it stopped and no default changed
    page.get_by_role("button", name="Stop the experiment").click()
    expect(page.get_by_role("status")).to_contain_text("Stopped")
    with world.cli.session() as session:
        assert experiments.history(session, "action_items") == []
