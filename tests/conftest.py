"""Fixtures shared by every test: the sandbox emulators, real services, settings."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from sandbox.server import Sandbox

# slack-sdk honours HTTPS_PROXY and ignores NO_PROXY: loopback traffic must never leave.
for _var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_var, None)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """All four emulators on ephemeral loopback ports, shared by the session."""
    with Sandbox() as running:
        yield running


@pytest.fixture
def clean_sandbox(sandbox: Sandbox) -> Sandbox:
    """The shared sandbox, reset to its seeded world before the test."""
    sandbox.reset()
    return sandbox
