"""The inspection API from outside: what tests and benchmarks use, never the internals."""

from __future__ import annotations

from typing import Any

import httpx


class SandboxClient:
    """Talks to one emulator's `/_sandbox/` routes at its origin (scheme://host:port)."""

    def __init__(self, origin: str, verify: str | bool = True) -> None:
        self.http = httpx.Client(base_url=origin, verify=verify, timeout=10, trust_env=False)

    def state(self) -> dict[str, Any]:
        return self._get("/_sandbox/state")

    def stats(self) -> dict[str, Any]:
        return self._get("/_sandbox/stats")

    def reset(self) -> None:
        self.http.post("/_sandbox/reset").raise_for_status()

    def _get(self, path: str) -> dict[str, Any]:
        response = self.http.get(path)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def arm(self, kind: str, **fault: Any) -> None:
        """Arm a fault (see sandbox.base) through the admin API."""
        self.http.post("/_sandbox/faults", json={"kind": kind, **fault}).raise_for_status()

    def clear_faults(self) -> None:
        self.http.delete("/_sandbox/faults").raise_for_status()
