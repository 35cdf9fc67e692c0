"""The core CLI commands, on each backend, through Typer's runner (the same code path)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from consentry.cli import app
from consentry.storage import open_store

runner = CliRunner()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(db_url: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--database-url", db_url])
    return result.exit_code, result.output


@pytest.fixture
def migrated(db_url: str) -> str:
    code, output = run(db_url, "migrate")
    assert code == 0, output
    return db_url


def test_migrate_creates_schema_default_tenant_and_first_key(db_url: str) -> None:
    code, output = run(db_url, "migrate")
    assert code == 0 and "Applied migrations" in output
    assert output.strip().splitlines()[-1].startswith("csk_")
    code, output = run(db_url, "migrate")
    assert code == 0 and "nothing to do" in output and "csk_" not in output


def test_keys_create_prints_the_key_last(migrated: str) -> None:
    code, output = run(migrated, "keys", "create", "--tenant", "default", "--role", "checker")
    assert code == 0, output
    key = output.strip().splitlines()[-1]
    assert key.startswith("csk_")
    store = open_store(migrated)
    try:
        roles = [k.role.value for k in store.list_api_keys("default")]
    finally:
        store.close()
    assert "checker" in roles
    code, output = run(migrated, "keys", "create", "--tenant", "nobody", "--role", "admin")
    assert code == 2 and "tenants create nobody" in output
    assert run(migrated, "tenants", "create", "nobody")[0] == 0
    assert run(migrated, "keys", "create", "--tenant", "nobody", "--role", "admin")[0] == 0


def test_purposes_notices_record_check_history(migrated: str, tmp_path: Path) -> None:
    code, out = run(
        migrated,
        "purposes",
        "create",
        "--id",
        "email",
        "--name",
        "Email",
        "--basis",
        "consent",
        "--lifetime-days",
        "365",
    )
    assert code == 0 and "created" in out
    assert "email" in run(migrated, "purposes", "list")[1]
    text = tmp_path / "privacy.txt"
    text.write_text("We email you.")
    code, out = run(
        migrated,
        "notices",
        "publish",
        "--id",
        "privacy",
        "--version",
        "1",
        "--text-file",
        str(text),
        "-p",
        "email",
    )
    assert code == 0, out
    assert "sha256:" in run(migrated, "notices", "show", "privacy")[1]
    code, out = run(migrated, "check", "--subject", "u1", "--purpose", "email")
    assert code == 3 and "not_given" in out
    code, out = run(
        migrated,
        "record",
        "--subject",
        "u1",
        "-c",
        "email=given",
        "--notice",
        "privacy:1",
        "--jurisdiction",
        "DE",
    )
    assert code == 0 and "token 1" in out
    code, out = run(migrated, "check", "--subject", "u1", "--purpose", "email", "--json")
    assert code == 0 and '"reason": "granted"' in out
    code, out = run(migrated, "history", "--subject", "u1", "--json")
    assert code == 0 and '"notice_version": 1' in out


def test_errors_are_one_line_and_exit_non_zero(migrated: str) -> None:
    code, out = run(migrated, "record", "--subject", "u1", "-c", "nothing=given")
    assert code == 2 and "unknown purpose" in out
    code, out = run(migrated, "record", "--subject", "u1", "-c", "email")
    assert code == 2 and "PURPOSE=ACTION" in out
    code, out = run(
        migrated, "record", "--subject", "u1", "-c", "email=given", "--occurred-at", "noon"
    )
    assert code == 2 and "occurred-at" in out


def test_commands_refuse_an_older_or_newer_schema(migrated: str) -> None:
    store = open_store(migrated)
    try:
        with store._write() as cur:
            cur.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES "
                "(999, 'future', '2030-01-01T00:00:00Z')"
            )
    finally:
        store.close()
    code, out = run(migrated, "purposes", "list")
    assert code == 1 and "newer" in out
    code, out = run(migrated, "migrate")
    assert code == 1 and "newer" in out


def test_serve_refuses_an_unmigrated_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = open_store(url)
    store.migrate()
    with store._write() as cur:
        cur.execute("DELETE FROM schema_migrations")
        cur.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES "
            "(0, 'older', '2020-01-01T00:00:00Z')"
        )
    store.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    result = subprocess.run(
        ["consentry", "serve", "--database-url", url, "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "consentry migrate" in result.stderr


@pytest.mark.parametrize(
    "command",
    ["serve", "migrate", "keys", "purposes", "notices", "record", "check", "history"],
)
def test_every_command_explains_itself_with_an_example(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    if command in ("keys", "purposes", "notices"):
        assert "create" in result.output or "publish" in result.output
    else:
        assert "Example" in result.output


def test_keys_revoke_and_rotate(migrated: str) -> None:
    store = open_store(migrated)
    try:
        (admin,) = store.list_api_keys("default")
        code, output = run(migrated, "keys", "create", "--role", "collector", "--label", "web")
        assert code == 0, output
        (collector,) = [k for k in store.list_api_keys("default") if k.role.value == "collector"]
        code, output = run(migrated, "keys", "rotate", collector.key_id, "--grace-seconds", "60")
        assert code == 0, output
        assert output.strip().splitlines()[-1].startswith("csk_")
        keys = {k.key_id: k for k in store.list_api_keys("default")}
        assert keys[collector.key_id].revoked_at is not None  # from a minute on
        (new,) = [k for k in keys.values() if k.role.value == "collector" and not k.revoked_at]
        assert new.label == "web"
        code, output = run(migrated, "keys", "revoke", new.key_id)
        assert code == 0 and "revoked" in output
        code, output = run(migrated, "keys", "revoke", admin.key_id)
        assert code == 2 and "last admin key" in output
        code, output = run(migrated, "keys", "revoke", "nope")
        assert code == 2 and "no API key 'nope'" in output
        code, output = run(migrated, "keys", "revoke", admin.key_id, "--force")
        assert code == 0
        assert all(k.revoked_at for k in store.list_api_keys("default"))
        code, output = run(migrated, "keys", "list")
        assert code == 0 and admin.key_id in output
    finally:
        store.close()
