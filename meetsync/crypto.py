"""Credentials at rest: MultiFernet, so a new key encrypts while old keys still decrypt."""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, MultiFernet

from meetsync.settings import FERNET_HOWTO, Settings


class MissingKeys(RuntimeError):
    """No encryption key is configured (production mode sets MEETSYNC_ENCRYPTION_KEYS)."""


def _fernet(settings: Settings) -> MultiFernet:
    if not settings.encryption_keys:
        raise MissingKeys(
            "MEETSYNC_ENCRYPTION_KEYS is not set; connection credentials cannot be sealed "
            f"or read. Make a key: {FERNET_HOWTO}"
        )
    return MultiFernet([Fernet(k.get_secret_value().encode()) for k in settings.encryption_keys])


def seal(settings: Settings, secrets: dict[str, Any]) -> str:
    """Encrypt a dict of secrets with the newest key."""
    return _fernet(settings).encrypt(json.dumps(secrets).encode()).decode()


def unseal(settings: Settings, token: str) -> dict[str, Any]:
    """Decrypt a dict of secrets with whichever configured key made it."""
    data: dict[str, Any] = json.loads(_fernet(settings).decrypt(token.encode()))
    return data


def rotate(settings: Settings, token: str) -> str:
    """Re-encrypt under the newest key (after adding a key at the front of the list)."""
    return _fernet(settings).rotate(token.encode()).decode()
