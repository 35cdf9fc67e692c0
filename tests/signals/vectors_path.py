"""Where the IAB test vectors are: beside these tests, next to the repo, or $CONSENTRY_SPECS_DIR."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def vectors_file(name: str) -> Path:
    """The vectors copied beside these tests, the shared ones next to the repo, or those under
    $CONSENTRY_SPECS_DIR; missing = failure."""
    candidates = [
        Path(__file__).resolve().parent / "vectors" / name,
        Path(__file__).resolve().parents[3] / "shared" / "specs" / "vectors" / name,
    ]
    env = os.environ.get("CONSENTRY_SPECS_DIR")
    if env:
        candidates += [Path(env) / "vectors" / name, Path(env) / name]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    pytest.fail(
        f"test vectors {name} not found (looked in {[str(c) for c in candidates]}); "
        "set CONSENTRY_SPECS_DIR to the shared specs directory",
        pytrace=False,
    )
