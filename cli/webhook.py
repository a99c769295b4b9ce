"""`meetsync webhook send FILE`: sign and send a meeting as the notes pipeline does.

The signing is `intake.client` (Standard Webhooks), the code a notes pipeline can copy;
the secret is MEETSYNC_WEBHOOK_SECRET, so a delivery the server refuses as `bad_signature`
means the two sides hold different secrets.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from pydantic import ValidationError

from admin.errors import Invalid
from cli.admin_session import reported
from intake.client import post_meeting
from meetsync.models import MeetingOutput
from meetsync.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="Send signed webhooks by hand.")

FINAL = {"done", "partial", "failed", "awaiting_review"}
HINTS = {
    "bad_signature": "the server's MEETSYNC_WEBHOOK_SECRET differs from the one used here",
    "expired_timestamp": "this machine's clock is more than 5 minutes off the server's",
    "replayed_signature": "this exact delivery was accepted already",
}


def _meeting(path: Path) -> MeetingOutput:
    with reported():
        try:
            return MeetingOutput.model_validate_json(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise Invalid(f"cannot read {path}: {exc.strerror}") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(top)"
            raise Invalid(f"{path} is not a meeting: {where}: {first['msg']}") from None


@app.command("send")
def send(
    file: Annotated[Path, typer.Argument(help="a MeetingOutput JSON file")],
    url: Annotated[
        str | None, typer.Option(help="the service (default: MEETSYNC_PUBLIC_BASE_URL)")
    ] = None,
    org: Annotated[str | None, typer.Option(help="send it for this org instead")] = None,
    legacy: Annotated[bool, typer.Option(help="sign with the X-Meetsync headers")] = False,
    wait: Annotated[
        float, typer.Option(help="seconds to wait for the meeting to finish; 0: don't")
    ] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="print the answer as JSON")] = False,
) -> None:
    """Sign FILE with MEETSYNC_WEBHOOK_SECRET and POST it to the meeting-completed webhook."""
    meeting = _meeting(file)
    if org:
        meeting = meeting.model_copy(update={"org_id": org})
    settings = get_settings()
    if settings.webhook_secret is None or not settings.webhook_secret.get_secret_value():
        typer.echo("error: MEETSYNC_WEBHOOK_SECRET is not set (run `meetsync init`)", err=True)
        raise typer.Exit(2)
    secret = settings.webhook_secret.get_secret_value()
    base = (url or settings.public_base_url).rstrip("/")
    try:
        with httpx.Client(base_url=base, timeout=30, trust_env=False) as http:
            response = post_meeting(http, secret, meeting, legacy=legacy)
            answer = _json(response)
            final = None
            if response.status_code in (200, 202) and wait > 0:
                final = _wait(http, str(answer.get("status_url", "")), wait)
    except httpx.TransportError as exc:
        typer.echo(
            f"error: nothing answers at {base} ({type(exc).__name__}): is `meetsync serve` "
            "running, and is MEETSYNC_PUBLIC_BASE_URL (or --url) its address?",
            err=True,
        )
        raise typer.Exit(1) from None
    if final is not None:
        answer["final_status"] = final
    if as_json:
        typer.echo(json.dumps({"http_status": response.status_code, **answer}))
    else:
        _describe(response.status_code, answer, meeting)
    if response.status_code not in (200, 202) or (final in (None, "failed") and wait > 0):
        raise typer.Exit(1)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"body": response.text[:300]}
    return body if isinstance(body, dict) else {"body": body}


def _wait(http: httpx.Client, status_url: str, timeout_s: float) -> str | None:
    """Poll the meeting's signed status link until it is final; its last status."""
    deadline = time.monotonic() + timeout_s
    status = None
    while status_url and time.monotonic() < deadline:
        response = http.get(status_url)
        if response.status_code == 200:
            status = response.json().get("status")
            if status in FINAL:
                return str(status)
        time.sleep(0.5)
    return status


def _describe(code: int, answer: dict[str, Any], meeting: MeetingOutput) -> None:
    if code in (200, 202):
        typer.echo(f"{code} accepted: meeting {answer.get('meeting_id')} ({meeting.title})")
        if answer.get("status_url"):
            typer.echo(f"status: {answer['status_url']}")
        if "final_status" in answer:
            typer.echo(f"final state: {answer['final_status'] or 'not final yet'}")
        return
    error = answer.get("error") or {}
    reason = error.get("code", "") if isinstance(error, dict) else ""
    message = error.get("message", answer) if isinstance(error, dict) else answer
    typer.echo(f"error: {code} {reason}: {message}", err=True)
    if reason in HINTS:
        typer.echo(f"hint: {HINTS[reason]}", err=True)
