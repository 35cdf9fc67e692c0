"""The `consentry` command. Each area registers its commands on `app` from its own module."""

from __future__ import annotations

from consentry.cli import collection as _collection  # noqa: F401  (registers its commands)
from consentry.cli import ledger as _ledger  # noqa: F401  (registers its commands)
from consentry.cli import propagation as _propagation  # noqa: F401  (registers its commands)
from consentry.cli.core import app


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
