"""Where the providers' published specs are: read at test time, never copied into the repo."""

from __future__ import annotations

import os
from pathlib import Path

# CI clones the repo with shared/ beside it; a developer's checkout sits in /work/main.
CANDIDATES = [Path(__file__).resolve().parents[2] / "shared" / "specs", Path("/work/shared/specs")]


def spec_path(name: str) -> Path:
    """The spec file `name`, from MEETSYNC_SPECS_DIR or the shared folder beside the repo."""
    if override := os.environ.get("MEETSYNC_SPECS_DIR"):
        return Path(override) / name
    for directory in CANDIDATES:
        if (directory / name).is_file():
            return directory / name
    return CANDIDATES[0] / name
