"""Settings that point every provider connection and the LLM at a running sandbox."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from meetsync.settings import ConnectionSetting, Settings
from sandbox.server import Sandbox


def settings_for(sandbox: Sandbox, base: Settings | None = None, **overrides: Any) -> Settings:
    """A copy of `base` whose connections and LLM use the sandbox's URLs and TLS cert.

    Without `base`, the settings are demo mode's; either way the sandbox's own endpoints
    (its loopback ports and its certificate) join the operator's allow-list.
    """
    base = base or Settings(mode="demo")
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
    endpoints = base.endpoints.model_copy(deep=True)
    for url in sandbox.urls.values():
        host = urlsplit(url).netloc
        if host not in endpoints.allowed_hosts:
            endpoints.allowed_hosts.append(host)
    if sandbox.ca_file not in endpoints.ca_files:
        endpoints.ca_files.append(sandbox.ca_file)
    update: dict[str, Any] = {
        "connections": connections,
        "sandbox_ca_file": sandbox.ca_file,
        "endpoints": endpoints,
    }
    if "openai" in sandbox.urls:
        update["llm"] = base.llm.model_copy(update={"base_url": sandbox.urls["openai"]})
    update.update(overrides)
    return base.model_copy(update=update)
