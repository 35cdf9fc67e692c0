"""The ledger's commands on each backend: integrate, verify receipt (offline), verify database,
checkpoint, keys verifiers and rotate-signing; and the offline verifier's import boundary."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from consentry.cli import app
from consentry.config import Settings
from consentry.ledger import offline
from consentry.ledger.checkpoint import VerifierKey, verify_checkpoint
from consentry.services import Services
from consentry.storage import SqlStore
from consentry.storage.ledger_store import LedgerStore
from tests.ledger.conftest import drop_append_only, fill
from tests.storage.conftest import run_raw_sql

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"CONSENTRY_SIGNING_KEYS_DIR": str(tmp_path / "keys")}


def run(env: dict[str, str], db_url: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--database-url", db_url], env=env)
    return result.exit_code, result.output


def offline_run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


@pytest.fixture
def recorded(store: SqlStore, db_url: str, env: dict[str, str]) -> str:
    fill(store, 25, ("default", "acme"))
    code, output = run(env, db_url, "integrate", "--once")
    assert code == 0 and "Integrated 25 events" in output, output
    return db_url


def services_for(db_url: str, env: dict[str, str]) -> Services:
    return Services.build(
        Settings(database_url=db_url, signing_keys_dir=Path(env["CONSENTRY_SIGNING_KEYS_DIR"]))
    )


def write(path: Path, data: Any) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_verify_receipt_offline(recorded: str, env: dict[str, str], tmp_path: Path) -> None:
    services = services_for(recorded, env)
    try:
        event = services.store.events_after(4, 1)[0]  # position 5, tenant default
        receipt = write(
            tmp_path / "receipt.json", {"receipt": services.ledger.receipt(event).to_json_dict()}
        )
        proof = write(
            tmp_path / "proof.json", services.ledger.inclusion("default", event.event_id).to_dict()
        )
        exported = write(tmp_path / "event.json", event.to_dict())
        altered = write(tmp_path / "altered.json", {**event.to_dict(), "action": "refused"})
        kept = services.ledger.checkpoint("default", 13)
        kept_proof = write(
            tmp_path / "kept-proof.json",
            services.ledger.inclusion("default", event.event_id, 13).to_dict(),
        )
        kept_checkpoint = write(tmp_path / "kept.txt", kept.note)
        consistency = write(
            tmp_path / "consistency.json", services.ledger.consistency("default", 13).to_dict()
        )
        newer = write(tmp_path / "newer.txt", services.ledger.checkpoint("default").note)
        keys = [k.to_string() for k in services.keyring.verifiers("default")]
        other_key = services.keyring.verifiers("acme")[0].to_string()
    finally:
        services.close()
    key_file = write(tmp_path / "keys.txt", "\n".join(keys))

    code, output = offline_run(
        env, "verify", "receipt", "--receipt", str(receipt), "--proof", str(proof),
        "--key", keys[0], "--event", str(exported),
    )  # fmt: skip
    assert code == 0, output
    assert "verified" in output and "leaf 2 of the tree of 13 leaves" in output

    code, output = offline_run(
        env, "verify", "receipt", "--receipt", str(receipt), "--proof", str(kept_proof),
        "--checkpoint", str(kept_checkpoint), "--key", str(key_file),
        "--newer-checkpoint", str(newer), "--consistency", str(consistency),
    )  # fmt: skip
    assert code == 0, output
    assert "extends it" in output

    for args, reason in [
        (["--event", str(altered)], "event"),
        (["--key", other_key], "receipt"),
    ]:
        base = ["verify", "receipt", "--receipt", str(receipt), "--proof", str(proof)]
        if "--key" not in args:
            base += ["--key", keys[0]]
        code, output = offline_run(env, *base, *args)
        assert code == 4, output
        assert "NOT VERIFIED" in output and reason in output


def test_verify_database_names_the_first_bad_leaf(recorded: str, env: dict[str, str]) -> None:
    code, output = run(env, recorded, "verify", "database")
    assert code == 0, output
    assert "25 events" in output and "matches the events" in output

    drop_append_only(recorded)
    (victim,) = run_raw_sql(recorded, "SELECT event_id FROM events WHERE position = 9")[0]
    run_raw_sql(recorded, "UPDATE events SET purpose = 'other' WHERE position = 9")
    code, output = run(env, recorded, "verify", "database")
    assert code == 4, output
    assert f"First bad leaf: position 9, event {victim}" in " ".join(output.split())

    code, output = run(env, recorded, "verify", "database", "--json")
    assert code == 4
    report = json.loads(output[output.index("{") :])
    assert report["first_bad_leaf"]["position"] == 9
    assert report["first_bad_leaf"]["event_id"] == str(victim)


def test_verify_database_in_parallel(store: SqlStore, db_url: str, env: dict[str, str]) -> None:
    fill(store, 45)
    assert run(env, db_url, "integrate", "--once")[0] == 0
    code, output = run(env, db_url, "verify", "database", "--workers", "2")
    assert code == 0, output


def test_checkpoint_and_keys(recorded: str, env: dict[str, str], tmp_path: Path) -> None:
    code, output = run(env, recorded, "keys", "verifiers", "--tenant", "acme")
    assert code == 0
    (first,) = [VerifierKey.parse(line) for line in output.split()]
    target = tmp_path / "published" / "checkpoint"
    target.parent.mkdir()
    code, output = run(env, recorded, "checkpoint", "--tenant", "acme", "--out", str(target))
    assert code == 0, output
    old = verify_checkpoint(target.read_text(), [first], origin="consentry/acme")
    assert old.size == 12

    code, output = run(env, recorded, "keys", "rotate-signing", "--tenant", "acme")
    assert code == 0, output
    new = VerifierKey.parse(output.strip().splitlines()[-1])
    assert new != first
    code, output = run(env, recorded, "keys", "verifiers", "--tenant", "acme")
    assert [VerifierKey.parse(line) for line in output.split()] == [new, first]
    code, output = run(env, recorded, "checkpoint", "--tenant", "acme", "--size", "5")
    assert verify_checkpoint(output, [new]).size == 5  # signed now, with the new key
    # Old checkpoints, signed before the rotation, still pass `verify database`.
    code, output = run(env, recorded, "verify", "database")
    assert code == 0, output


def test_integrate_runs_until_stopped(store: SqlStore, db_url: str, env: dict[str, str]) -> None:
    fill(store, 5)
    command = ["integrate", "--database-url", db_url]
    proc = subprocess.Popen(
        [sys.executable, "-c", "from consentry.cli import main; main()", *command],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        ledger = LedgerStore(store)
        while ledger.integrated_position() < 5:
            assert time.monotonic() < deadline, "the integrator did not integrate"
            time.sleep(0.05)
        fill(store, 3, start=5)
        while ledger.integrated_position() < 8:
            assert time.monotonic() < deadline, "the integrator did not poll"
            time.sleep(0.05)
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0, output
    assert "Stopped; the ledger is at position 8" in output


def test_offline_verifier_needs_only_stdlib_and_cryptography() -> None:
    """`verify receipt` must run where only the ledger's stdlib files and cryptography exist."""
    allowed_ledger = {"verify", "checkpoint", "receipt", "hasher"}
    seen: set[str] = set()
    todo = ["offline"]
    folder = Path(offline.__file__).parent
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        tree = ast.parse((folder / f"{name}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            modules: list[str] = []
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    modules = [f"consentry.ledger.{node.module}"]
                elif node.module:
                    modules = [node.module]
            for module in modules:
                top = module.split(".")[0]
                if module.startswith("consentry.ledger."):
                    part = module.split(".")[2]
                    assert part in allowed_ledger, f"{name}.py imports {module}"
                    todo.append(part)
                else:
                    assert top in sys.stdlib_module_names or top in (
                        "__future__",
                        "cryptography",
                    ), f"{name}.py imports {module}"


def test_serve_runs_the_integrator(services: Services) -> None:
    """What `consentry serve` starts beside the API: woken by the recorder's commits."""
    from consentry.cli.ledger import start_integrator
    from consentry.domain.events import Action, Source
    from consentry.domain.purposes import LegalBasis, Purpose
    from consentry.recording.service import ConsentRequest, EventRequest

    off = services.settings.model_copy(update={"ledger_integrator": False})
    assert start_integrator(off, services) is None
    background = start_integrator(services.settings, services)
    assert background is not None
    try:
        services.recorder.add_purpose(
            "default", Purpose(id="email", name="Email", legal_basis=LegalBasis.CONSENT)
        )
        request = ConsentRequest("s", Source.API, [EventRequest("email", Action.GIVEN)])
        event = services.recorder.record("default", request).events[0]
        deadline = time.monotonic() + 5
        while services.ledger.ledger.integrated_position() < event.position:
            assert time.monotonic() < deadline
            time.sleep(0.005)
    finally:
        background.stop()


def test_verify_database_with_public_keys_only(
    recorded: str, env: dict[str, str], tmp_path: Path
) -> None:
    """An auditor's machine: the database and the published keys, no keys folder."""
    keys = []
    for tenant in ("default", "acme"):
        keys += run(env, recorded, "keys", "verifiers", "--tenant", tenant)[1].split()
    elsewhere = {"CONSENTRY_SIGNING_KEYS_DIR": str(tmp_path / "auditor-keys")}
    code, output = run(elsewhere, recorded, "verify", "database", *(f"--key={k}" for k in keys))
    assert code == 0, output
    code, output = run(elsewhere, recorded, "verify", "database")  # no key at all: refused
    assert code == 4 and "checkpoint_signature" in output
    assert not (tmp_path / "auditor-keys").exists(), "verification must not create keys"
