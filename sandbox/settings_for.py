"""Settings that point every provider connection and the LLM at a running sandbox."""

from __future__ import annotations

from typing import Any

from meetsync.settings import ConnectionSetting, Settings
from sandbox.server import Sandbox


def settings_for(sandbox: Sandbox, base: Settings | None = None, **overrides: Any) -> Settings:
    """A copy of `base` whose connections and LLM use the sandbox's URLs and TLS cert."""
    base = base or Settings()
    connections: dict[str, ConnectionSetting] = {}
    for name, conn in base.connections.items():
        if conn.provider in sandbox.urls:
            options = dict(conn.options)
            if conn.provider == "salesforce":
                options["ca_file"] = sandbox.ca_file
            conn = conn.model_copy(
                update={"base_url": sandbox.urls[conn.provider], "options": options}
            )
        connections[name] = conn
    update: dict[str, Any] = {"connections": connections, "sandbox_ca_file": sandbox.ca_file}
    if "openai" in sandbox.urls:
        update["llm"] = base.llm.model_copy(update={"base_url": sandbox.urls["openai"]})
    update.update(overrides)
    return base.model_copy(update=update)
