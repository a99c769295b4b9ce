"""Slack interaction latency (a reviewer's Approve) at a fixed rate, beside a bare endpoint.

`python -m bench.interactions [--rate 50] [--seconds 10]` serves the real app (SQLite, stub
broker: the handler verifies Slack's signature, records the decision with its two
conditional updates and enqueues the push and the message refresh; nothing consumes the
queues) and a bare endpoint that only reads the body, each in its own process, then sends
signed `block_actions` payloads, each approving its own pending review request, at an
open-loop rate (`bench.load`). Ends with one JSON line:
{"rps", "p50_ms", "p99_ms", "bare_rps", "bare_p99_ms"}. Slack wants an answer within 3 s;
our target is p99 ≤ 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import Response

from bench.load import free_port, paced, serve, stop, wait_up
from sandbox.slack.interactions import sign

SECRET = "bench-signing-secret"
APPROVER = "U0SBX0001"
PATH = "/v1/slack/interactions"


def _seed(database_url: str, count: int) -> list[str]:
    """One meeting with `count` ops held for review, each with its pending request."""
    from meetsync.bootstrap import ensure_org
    from meetsync.db.migrate import upgrade
    from meetsync.db.models import Meeting, OpRecord, ReviewRequest
    from meetsync.db.session import session_scope

    upgrade(database_url)
    ids: list[str] = []
    with session_scope(database_url) as session:
        ensure_org(session, "acme", "Acme")
        meeting = Meeting(
            org_id="acme",
            external_id="bench-review",
            title="Globex pricing call",
            payload={},
            transcript_hash="0" * 64,
            status="planned",
        )
        session.add(meeting)
        session.flush()
        for i in range(count):
            key = f"bench-op-{i:06d}"
            session.add(
                OpRecord(
                    key=key,
                    org_id="acme",
                    meeting_id=meeting.id,
                    connector="salesforce",
                    connection="acme-salesforce",
                    action="update",
                    target={"object": "Opportunity", "id": f"006BENCH{i:06d}"},
                    fields={"NextStep": f"Send the pricing sheet ({i})"},
                    payload_hash=f"h{i}",
                    state="awaiting_review",
                )
            )
            request = ReviewRequest(
                org_id="acme",
                meeting_id=meeting.id,
                op_key=key,
                payload_hash=f"h{i}",
                destination="opportunity-update",
                proposal={"fields": [{"name": "NextStep", "proposed": f"pricing {i}"}]},
                approvers={"emails": ["dana@acme.io"], "slack_ids": [APPROVER]},
            )
            session.add(request)
            session.flush()
            ids.append(request.id)
    return ids


def _serve_real(port: int, database_url: str) -> None:
    import uvicorn

    from intake.app import create_app
    from meetsync.settings import Settings
    from workers.actors import declare
    from workers.broker import make_broker
    from workers.runtime import Runtime

    settings = Settings(database_url=database_url, slack_signing_secret=SECRET)
    app = create_app(settings, declare(make_broker("stub"), Runtime(settings)))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def bare(request: Request) -> Response:
    """The floor: read the body, answer 200, nothing else."""
    await request.body()
    return Response(status_code=200)


def _serve_bare(port: int) -> None:
    import uvicorn

    app = FastAPI()
    app.post(PATH)(bare)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _request(port: int, request_id: str) -> bytes:
    payload = {
        "type": "block_actions",
        "user": {"id": APPROVER},
        "trigger_id": "bench",
        "actions": [{"action_id": "review:approve", "value": request_id, "type": "button"}],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    now = int(time.time())
    lines = [
        f"POST {PATH} HTTP/1.1",
        f"host: 127.0.0.1:{port}",
        "content-type: application/x-www-form-urlencoded",
        f"x-slack-request-timestamp: {now}",
        f"x-slack-signature: {sign(SECRET, now, body)}",
        f"content-length: {len(body)}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    workdir = tempfile.mkdtemp(prefix="meetsync-bench-")
    database_url = f"sqlite:///{workdir}/bench.db"
    ids = _seed(database_url, int(args.rate * args.seconds) + 20)
    real_port, bare_port = free_port(), free_port()
    real = serve(_serve_real, real_port, database_url)
    bare_server = serve(_serve_bare, bare_port)
    try:
        wait_up(f"http://127.0.0.1:{real_port}")
        wait_up(f"http://127.0.0.1:{bare_port}")
        runs = {}
        for label, port in (("interactions", real_port), ("bare", bare_port)):
            # the first 20 requests warm up and do not count
            requests = [_request(port, i) for i in ids]
            runs[label] = asyncio.run(paced(port, requests[20:], args.rate, requests[:20]))
            print(f"{label}: {runs[label].statuses}", file=sys.stderr)
    finally:
        stop(real, bare_server)
    measured, baseline = runs["interactions"].summary(), runs["bare"].summary()
    result = {**measured, "bare_rps": baseline["rps"], "bare_p99_ms": baseline["p99_ms"]}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
