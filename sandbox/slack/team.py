"""The emulated workspace's fixed identity: the bot token it accepts, its team, bot and app.

Tests and benchmarks sign their calls with TOKEN; `auth.test` and every posted message
carry these ids, as Slack's answers do.
"""

TOKEN = "xoxb-sandbox-meetsync"
TEAM_ID = "T0SBX0001"
TEAM_NAME = "Acme Analytics"
TEAM_URL = "https://acme-sandbox.slack.com/"
BOT_USER_ID = "U0SBXBOT1"
BOT_ID = "B0SBX0001"
APP_ID = "A0SBX0001"
