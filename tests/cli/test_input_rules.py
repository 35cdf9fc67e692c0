"""The CLI applies the same input rules as the API (issue 10 #7, #8, #9, #11): one line on
stderr, exit 2, nothing written; on each backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from consentry.storage import open_store
from tests.cli.test_core import migrated, run

__all__ = ["migrated"]


def head(db_url: str) -> int:
    store = open_store(db_url)
    try:
        return store.head()
    finally:
        store.close()


@pytest.fixture
def ready(migrated: str) -> str:
    code, out = run(
        migrated, "purposes", "create", "--id", "email", "--name", "E", "--basis", "consent"
    )
    assert code == 0, out
    return migrated


@pytest.mark.parametrize(
    "args",
    [
        ("--occurred-at", "0001-01-01T00:00:00+01:00"),
        ("--occurred-at", "1969-12-31T23:59:59Z"),
        ("--occurred-at", "2999-01-01T00:00:00Z"),
        ("--occurred-at", "0"),
        ("--occurred-at", "2026-01-01"),
        ("--jurisdiction", "D\u0415"),
        ("--jurisdiction", "\uff24\uff25"),
    ],
)
def test_record_refuses_what_the_api_refuses(ready: str, args: tuple[str, str]) -> None:
    code, out = run(ready, "record", "--subject", "u1", "-c", "email=given", *args)
    assert code == 2, out
    assert out.startswith("error:") and "Traceback" not in out
    assert head(ready) == 0


@pytest.mark.parametrize("subject", ["u1 ", " u1", "e\u0301", "a\u200db", "x" * 257])
def test_record_applies_the_subject_policy(ready: str, subject: str) -> None:
    code, out = run(ready, "record", "--subject", subject, "-c", "email=given")
    assert code == 2 and "subject" in out, out
    assert head(ready) == 0


def test_history_refuses_times_outside_the_range(ready: str) -> None:
    for option in ("--as-of", "--known-at"):
        code, out = run(ready, "history", "--subject", "u1", option, "1969-07-20T20:17:00Z")
        assert code == 2 and "1970" in out, out


def test_catalogue_integers_and_text(ready: str, tmp_path: Path) -> None:
    text = tmp_path / "notice.txt"
    text.write_text("We email you.")
    publish = ("notices", "publish", "--id", "privacy", "--text-file", str(text), "-p", "email")
    for version in (str(2**31), str(2**63)):
        code, out = run(ready, *publish, "--version", version)
        assert code == 2 and "version" in out, out
    text.write_text("We\x00email you.")
    code, out = run(ready, *publish, "--version", "1")
    assert code == 2 and "U+0000" in out, out
    code, out = run(
        ready,
        "purposes",
        "create",
        "--id",
        "ads",
        "--name",
        "Ads",
        "--basis",
        "consent",
        "--lifetime-days",
        str(2**40),
    )
    assert code == 2 and "lifetime_days" in out, out
    code, out = run(ready, "tenants", "create", "bad name")
    assert code == 2 and "tenant name" in out, out
