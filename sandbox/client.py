"""The inspection and fault API from outside: what tests and benchmarks use, never internals."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from typing import Any

import httpx


class SandboxClient:
    """Talks to one emulator's `/_sandbox/` routes at its origin (scheme://host:port)."""

    def __init__(self, origin: str, verify: str | bool = True) -> None:
        """`verify` is a CA file (the sandbox's, for Salesforce) or a bool."""
        tls = ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
        self.http = httpx.Client(base_url=origin, verify=tls, timeout=10, trust_env=False)

    def state(self) -> dict[str, Any]:
        """What the provider holds: tasks, records, messages."""
        return self._send("GET", "/_sandbox/state")

    def stats(self) -> dict[str, Any]:
        """Requests per endpoint, 429s served and faults injected."""
        return self._send("GET", "/_sandbox/stats")

    def reset(self) -> None:
        """Back to the seeded world and the baseline faults, rewound."""
        self._send("POST", "/_sandbox/reset")

    def faults(self) -> dict[str, Any]:
        """The seed, the rules in force (with how often each fired) and faults injected."""
        return self._send("GET", "/_sandbox/faults")

    def configure_faults(
        self, rules: Sequence[dict[str, Any]], seed: int | None = None
    ) -> dict[str, Any]:
        """Replace every fault rule (see sandbox.faults) and rewind the dice to `seed`."""
        return self._send("PUT", "/_sandbox/faults", {"seed": seed, "rules": list(rules)})

    def add_faults(self, rules: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Append fault rules to those in force."""
        return self._send("POST", "/_sandbox/faults", {"rules": list(rules)})

    def arm(self, kind: str, *, times: int | None = 1, **fault: Any) -> None:
        """Make the next `times` matching requests fail as `kind` (see sandbox.faults)."""
        self._send("POST", "/_sandbox/faults", {"kind": kind, "times": times, **fault})

    def clear_faults(self) -> None:
        self._send("DELETE", "/_sandbox/faults")

    def close(self) -> None:
        self.http.close()

    def _send(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.http.request(method, path, json=body)
        if response.status_code == 400:
            raise ValueError(response.json().get("error", response.text))
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data
