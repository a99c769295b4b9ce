"""Local emulator of the Asana REST API (v1.0): workspaces, users, projects, sections, tasks.

One class in layers, a module each: `store` (the seeded state and its lookups) under
`representations` (objects as the API shows them) under `tasks` (the task endpoints) under
`app` (auth, the token's limits, routes and the other reads); beside them `errors`, `limits`
(the token limiter), `envelope` (`opt_fields` and pagination) and `rich_text`.
"""

from sandbox.asana.app import AsanaSandbox
from sandbox.asana.envelope import PREFIX
from sandbox.asana.errors import AsanaError, error_body
from sandbox.asana.limits import TokenLimiter

__all__ = ["PREFIX", "AsanaError", "AsanaSandbox", "TokenLimiter", "error_body"]
