"""Backups restore into a database that `consentry verify database` accepts.

The commands are read from docs/deployment.md (the blocks marked `<!-- tested: NAME -->`) and
run as written, with the variables the doc names pointing at databases of this test:
- PostgreSQL: a populated database (events of two tenants, the ledger integrated, signed
  checkpoints, some events not yet integrated) is dumped with pg_dump, restored with pg_restore
  into a new, empty database, and verified; then one event of the restored copy is altered
  behind the triggers' back, and verify must fail (the check is not vacuous).
- SQLite: while `consentry serve` records consents, the online backup (sqlite3's `.backup`, and
  Python's Connection.backup) copies the file; each copy verifies.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from consentry.config import Settings
from consentry.domain.events import Action, Source
from consentry.domain.purposes import LegalBasis, Purpose
from consentry.recording.service import ConsentRequest, EventRequest
from consentry.services import Services
from tests.conftest import PG_BASE_URL, service_missing
from tests.deploy.conftest import ROOT, clean_env, consentry_exe, free_port, stop, wait_http

DOC = ROOT / "docs" / "deployment.md"


def doc_block(name: str) -> str:
    """The shell block of docs/deployment.md marked `<!-- tested: name -->`."""
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"<!-- tested: {re.escape(name)} -->\n```sh\n(.*?)```", text, re.S)
    assert match, f"docs/deployment.md has no block marked <!-- tested: {name} -->"
    return match.group(1)


def run_block(name: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    script = doc_block(name)
    environment = clean_env(**env)  # `consentry` and `python3` of this interpreter come first
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{name} failed:\n{script}\n{done.stdout}\n{done.stderr}"
    return done


def verify_json(database_url: str, keys_dir: Path) -> dict[str, object]:
    done = subprocess.run(
        [*consentry_exe(), "verify", "database", "--json"],
        env=clean_env(
            CONSENTRY_DATABASE_URL=database_url, CONSENTRY_SIGNING_KEYS_DIR=str(keys_dir)
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(done.stdout)
    report["exit_code"] = done.returncode
    return dict(report)


# --------------------------------------------------------------------------- PostgreSQL


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    """Names of a source database (created) and a restore target (created by the doc's block);
    both dropped afterwards."""
    try:
        import psycopg

        admin = psycopg.connect(PG_BASE_URL, autocommit=True, connect_timeout=3)
    except Exception as exc:
        service_missing("PostgreSQL", exc)
        raise
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        service_missing("pg_dump and pg_restore (PostgreSQL's client programs)", "not on PATH")
    suffix = uuid.uuid4().hex[:10]
    source, restored = f"cbk_src_{suffix}", f"cbk_dst_{suffix}"
    admin.execute(f"CREATE DATABASE {source}")
    try:
        yield source, restored
    finally:
        for name in (source, restored):
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def populate(url: str, keys: Path) -> tuple[int, int]:
    """Events of two tenants, integrated with checkpoints, then a few more not integrated.
    Returns (events, integrated position)."""
    settings = Settings(
        database_url=url, signing_keys_dir=keys, ledger_checkpoint_interval_seconds=0
    )
    services = Services.build(settings)
    try:
        services.store.migrate()
        for tenant in ("default", "acme"):
            services.store.ensure_tenant(tenant)
            for pid in ("email", "analytics"):
                services.recorder.add_purpose(tenant, Purpose(pid, pid.title(), LegalBasis.CONSENT))
        actions = [Action.GIVEN, Action.REFUSED, Action.WITHDRAWN]
        for i in range(40):
            tenant = ("default", "acme")[i % 2]
            request = ConsentRequest(
                subject=f"u-{i % 7}",
                source=Source.API,
                events=[
                    EventRequest("email", actions[i % 3]),
                    EventRequest("analytics", Action.GIVEN),
                ],
                jurisdiction="DE",
            )  # fmt: skip
            services.recorder.record(tenant, request)
            if i == 29:
                services.ledger.integrator().catch_up(lambda _done: None)
        integrated = services.ledger.ledger.integrated_position()
        return services.store.head(), integrated
    finally:
        services.close()


def test_pg_dump_restores_into_an_empty_database_that_verifies(
    databases: tuple[str, str], tmp_path: Path
) -> None:
    source, restored = databases
    source_url = with_database(PG_BASE_URL, source)
    restored_url = with_database(PG_BASE_URL, restored)
    keys = tmp_path / "keys"
    events, integrated = populate(source_url, keys)
    assert 0 < integrated < events, "some events integrated, some pending, as in real life"
    before = verify_json(source_url, keys)
    assert before["ok"] is True and before["exit_code"] == 0, before

    workdir = tmp_path / "backup"
    workdir.mkdir()
    variables = {
        "DATABASE_URL": source_url,
        "KEYS_DIR": str(keys),
        "RESTORED_DB": restored,
        "RESTORED_URL": restored_url,
    }
    run_block("backup-postgres", workdir, **variables)
    assert (workdir / "consentry.dump").stat().st_size > 0
    done = run_block("restore-postgres", workdir, **variables)
    assert "The ledger matches the events." in done.stdout

    report = verify_json(restored_url, workdir / "restored-keys")
    assert report["exit_code"] == 0 and report["ok"] is True, report
    assert report["events"] == integrated and report["pending"] == events - integrated
    assert report["checkpoints"] >= 2 and report["trees"] == before["trees"]
    migrate = subprocess.run(
        [*consentry_exe(), "migrate"],
        env=clean_env(CONSENTRY_DATABASE_URL=restored_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert migrate.returncode == 0 and "nothing to do" in migrate.stdout, migrate.stdout

    import psycopg

    with psycopg.connect(restored_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
        conn.execute("UPDATE events SET subject = 'someone-else' WHERE position = 3")
    tampered = verify_json(restored_url, workdir / "restored-keys")
    assert tampered["exit_code"] == 4 and tampered["ok"] is False
    assert tampered["first_bad_leaf"]["position"] == 3  # type: ignore[index]


# --------------------------------------------------------------------------- SQLite


class Writer(threading.Thread):
    """Records consents over HTTP until stopped (bounded: at most 2,000 requests, 120 s)."""

    def __init__(self, base: str, key: str) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.headers = {"Authorization": f"Bearer {key}"}
        self.stop_event = threading.Event()
        self.count = 0
        self.errors: list[str] = []

    def run(self) -> None:
        deadline = time.monotonic() + 120
        with httpx.Client(base_url=self.base, headers=self.headers, timeout=10) as client:
            while not self.stop_event.is_set() and self.count < 2000:
                if time.monotonic() > deadline:
                    break
                action = ("given", "withdrawn")[self.count % 2]
                body = {
                    "subject": f"u-{self.count % 50}",
                    "events": [{"purpose": "email", "action": action}],
                }
                r = client.post("/v1/consents", json=body)
                if r.status_code != 201:
                    self.errors.append(r.text)
                    return
                self.count += 1


def test_the_sqlite_online_backup_taken_while_the_server_writes_verifies(tmp_path: Path) -> None:
    env = {
        "CONSENTRY_DATABASE_URL": "sqlite:///consentry.db",
        "CONSENTRY_LEDGER_CHECKPOINT_INTERVAL_SECONDS": "0",
    }
    migrated = subprocess.run(
        [*consentry_exe(), "migrate"], cwd=tmp_path, env=clean_env(**env),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert migrated.returncode == 0, migrated.stderr
    key = migrated.stdout.strip().splitlines()[-1]
    port = free_port()
    server = subprocess.Popen(
        [*consentry_exe(), "serve", "--port", str(port)], cwd=tmp_path, env=clean_env(**env),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    writer = Writer(base, key)
    try:
        wait_http(f"{base}/healthz", server)
        purpose = {"id": "email", "name": "Email", "legal_basis": "consent"}
        r = httpx.post(f"{base}/v1/purposes", json=purpose, headers=writer.headers)
        assert r.status_code == 201, r.text
        writer.start()
        while writer.count < 100 and writer.is_alive():
            time.sleep(0.02)
        blocks = ["backup-sqlite-python"]
        if shutil.which("sqlite3"):
            blocks.append("backup-sqlite-cli")
        counts = {}
        for name in blocks:
            during = writer.count
            run_block(name, tmp_path, **env)
            counts[name] = (during, writer.count)
        while writer.count < counts[blocks[-1]][1] + 50 and writer.is_alive():
            time.sleep(0.02)  # the server went on writing after the backups
        writer.stop_event.set()
        writer.join(30)
        assert not writer.errors, writer.errors[:3]
    finally:
        writer.stop_event.set()
        output = stop(server)
    assert "Traceback" not in output, output

    live = sqlite3.connect(tmp_path / "consentry.db")
    total = live.execute("SELECT count(*) FROM events").fetchone()[0]
    live.close()
    for name in blocks:
        copy = tmp_path / "consentry-backup.db"
        if name == "backup-sqlite-cli":
            copy = tmp_path / "consentry-backup-cli.db"
        db = sqlite3.connect(copy)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        events = db.execute("SELECT count(*) FROM events").fetchone()[0]
        db.close()
        assert 100 <= events < total, f"{name}: not taken mid-writes ({events} of {total})"
        report = verify_json(f"sqlite:///{copy}", tmp_path / "consentry-keys")
        assert report["exit_code"] == 0 and report["ok"] is True, (name, report)
        assert report["checkpoints"] >= 1 and report["events"] + report["pending"] == events
    done = run_block("verify-sqlite-backup", tmp_path, **env)
    assert "The ledger matches the events." in done.stdout
