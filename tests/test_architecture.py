"""The layering of DESIGN.md, read from the imports: dependencies point inward.

- domain/ and signals/ import only the standard library;
- storage/ and ledger/ import domain (not services, not api);
- nothing imports api/, except the CLI's `serve`, which starts it (consentry.api.app only), and
  the serverless handler, which runs it in a function (consentry.api.app, and the error shape
  for the events the app never sees);
- api/, ui/ and cli/ never import a database driver.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "consentry"


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules_in(package: str) -> list[Path]:
    return sorted((SRC / package).rglob("*.py"))


@pytest.mark.parametrize("package", ["domain", "signals"])
def test_pure_core_imports_only_the_standard_library(package: str) -> None:
    stdlib = sys.stdlib_module_names
    for path in modules_in(package):
        for name in imports_of(path):
            top = name.split(".")[0]
            allowed = (
                top in stdlib or top == "__future__" or name.startswith(f"consentry.{package}")
            )
            assert allowed, f"{path.relative_to(SRC)} imports {name}"


@pytest.mark.parametrize("package", ["storage", "ledger"])
def test_storage_and_ledger_do_not_import_services(package: str) -> None:
    forbidden = (
        "consentry.api",
        "consentry.recording",
        "consentry.decisions",
        "consentry.propagation",
        "consentry.ui",
        "consentry.cli",
        "consentry.sdk",
    )
    for path in modules_in(package):
        for name in imports_of(path):
            assert not name.startswith(forbidden), f"{path.relative_to(SRC)} imports {name}"


def test_nothing_imports_the_api() -> None:
    for path in SRC.rglob("*.py"):
        if (SRC / "api") in path.parents:
            continue
        for name in imports_of(path):
            if name == "consentry.api.app" and (SRC / "cli") in path.parents:
                continue  # `consentry serve` runs the app: the one entry point allowed
            serverless = (SRC / "serverless") in path.parents
            if serverless and name in ("consentry.api.app", "consentry.api.errors"):
                continue  # the Lambda handler runs the app, and answers in its error shape
            assert not name.startswith("consentry.api"), f"{path.relative_to(SRC)} imports {name}"


@pytest.mark.parametrize("package", ["api", "ui", "cli"])
def test_boundaries_never_talk_to_a_database_driver(package: str) -> None:
    drivers = ("sqlite3", "psycopg", "psycopg_pool", "asyncpg")
    for path in modules_in(package):
        for name in imports_of(path):
            assert not name.startswith(drivers), f"{path.relative_to(SRC)} imports {name}"
