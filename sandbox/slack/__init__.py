"""Local emulator of the Slack Web API: the methods meetsync calls, errors and rate limits.

One class in layers, a module each: `store` (the seeded workspace, lookups, throttling)
under `methods` (the Web API methods) under `app` (auth, routing, error answers); beside
them `team` (the fixed ids), `errors`, `bucket`, `arguments`, `content` and `shapes`.
"""

from sandbox.slack.app import SlackSandbox
from sandbox.slack.team import APP_ID, BOT_ID, BOT_USER_ID, TEAM_ID, TEAM_NAME, TEAM_URL, TOKEN

__all__ = [
    "APP_ID",
    "BOT_ID",
    "BOT_USER_ID",
    "TEAM_ID",
    "TEAM_NAME",
    "TEAM_URL",
    "TOKEN",
    "SlackSandbox",
]
