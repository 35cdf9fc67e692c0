"""Tampering with the log as an administrator would, on each backend: `verify database` names it.

The append-only triggers are dropped first (what anyone holding the database's owner credentials
can do), then one event is changed, deleted, swapped with another, or inserted out of band. Each
time the audit must fail and name the first bad leaf by position (and event id). The signing
keys are outside the database, so the signed checkpoints are what the attacker cannot redo.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from consentry.config import Settings
from consentry.ledger.audit import AuditReport, audit_database
from consentry.ledger.hasher import hash_leaf
from consentry.ledger.offline import parse_verifier_keys, verify_receipt_bundle
from consentry.ledger.tree import append_leaves
from consentry.services import Services
from consentry.storage import SqlStore
from consentry.storage.ledger_store import LeafInput
from tests.ledger.conftest import drop_append_only, fill

Sql = Callable[..., list[tuple[Any, ...]]]
TENANTS = ("default", "acme")


@dataclass
class Ledger:
    services: Services
    sql: Sql
    postgres: bool

    def audit(self) -> AuditReport:
        return audit_database(self.services.ledger.ledger, self.services.keyring.verifiers)

    def event_id(self, position: int) -> str:
        return str(self.sql("SELECT event_id FROM events WHERE position = ?", (position,))[0][0])


@pytest.fixture
def ledger(store: SqlStore, db_url: str, tmp_path: Path, sql: Sql) -> Ledger:
    """40 events of two tenants, integrated in batches of 10 with a checkpoint each, verified;
    then the triggers are dropped."""
    fill(store, 40, TENANTS)
    settings = Settings(
        database_url=db_url,
        signing_keys_dir=tmp_path / "keys",
        ledger_batch_size=10,
        ledger_checkpoint_interval_seconds=0,
    )
    services = Services.build(settings, store)
    assert services.ledger.integrate() == 40
    setup = Ledger(services, sql, db_url.startswith("postgres"))
    report = setup.audit()
    assert report.ok, report.problems
    assert report.events == 40 and report.trees == {"default": 20, "acme": 20}
    assert report.checkpoints == 8  # 4 batches x 2 tenants
    drop_append_only(db_url)
    return setup


def assert_names(report: AuditReport, position: int, event_id: str, kind: str) -> None:
    assert not report.ok
    first = report.first_bad_leaf
    assert first is not None, report.problems
    assert (first.position, first.event_id, first.kind) == (position, event_id, kind), first
    assert str(position) in first.message and event_id in first.message


@pytest.mark.parametrize(
    ("column", "value"),
    [("action", "'withdrawn'"), ("subject", "'someone-else'"), ("ip", "NULL")],
)
def test_changing_one_field_of_one_event(ledger: Ledger, column: str, value: str) -> None:
    victim = ledger.event_id(17)
    ledger.sql(f"UPDATE events SET {column} = {value} WHERE position = 17")
    report = ledger.audit()
    assert_names(report, 17, victim, "altered")
    # Only that leaf's tree is affected: the other tenant's checkpoints still match.
    assert {p.tenant for p in report.problems} == {"default"}


def test_changing_a_time_by_one_microsecond(ledger: Ledger) -> None:
    victim = ledger.event_id(3)
    if ledger.postgres:
        ledger.sql(
            "UPDATE events SET occurred_at = occurred_at + interval '1 microsecond'"
            " WHERE position = 3"
        )
    else:
        (when,) = ledger.sql("SELECT occurred_at FROM events WHERE position = 3")[0]
        later = when[:-2] + str((int(when[-2]) + 1) % 10) + "Z"
        ledger.sql("UPDATE events SET occurred_at = ? WHERE position = 3", (later,))
    assert_names(ledger.audit(), 3, victim, "altered")


def test_deleting_one_event(ledger: Ledger) -> None:
    victim = ledger.event_id(12)
    ledger.sql("DELETE FROM events WHERE position = 12")
    report = ledger.audit()
    assert_names(report, 12, victim, "missing")
    # The tree recomputed from what is left no longer matches the signed checkpoints.
    assert any(p.kind == "checkpoint_root" for p in report.problems)


@pytest.mark.parametrize("other", [20, 21], ids=["same-tenant", "other-tenant"])
def test_swapping_two_events(ledger: Ledger, other: int) -> None:
    first = ledger.event_id(8)
    ledger.sql("UPDATE events SET position = -8 WHERE position = 8")
    ledger.sql("UPDATE events SET position = 8 WHERE position = ?", (other,))
    ledger.sql("UPDATE events SET position = ? WHERE position = -8", (other,))
    report = ledger.audit()
    first_bad = report.first_bad_leaf
    assert first_bad is not None and first_bad.position == 8
    assert first_bad.event_id in (first, ledger.event_id(8))
    assert {p.position for p in report.problems if p.kind in ("altered", "missing")} >= {8, other}


def _forge(ledger: Ledger, position: int, like: int) -> str:
    """Insert a consent the person never gave, at `position`, copied from event `like`."""
    forged = str(uuid.uuid4())
    cast = "CAST(? AS uuid)" if ledger.postgres else "?"
    ledger.sql(
        "INSERT INTO events (position, event_id, tenant, subject, subject_version, purpose,"
        " action, legal_basis, occurred_at, recorded_at, source, actor, jurisdiction, notice_id,"
        " notice_version, notice_hash, ip, user_agent, raw_signal, expires_at)"
        f" SELECT ?, {cast}, tenant, subject, subject_version + 1000, purpose, 'given',"
        " legal_basis, occurred_at, recorded_at, source, actor, jurisdiction, notice_id,"
        " notice_version, notice_hash, ip, user_agent, raw_signal, expires_at"
        " FROM events WHERE position = ?",
        (position, forged, like),
    )
    return forged


def test_inserting_one_event_into_history(ledger: Ledger) -> None:
    # Make room at position 15 (every later event moves up one), then forge an event there.
    ledger.sql("UPDATE events SET position = -position - 1 WHERE position >= 15")
    ledger.sql("UPDATE events SET position = -position WHERE position < 0")
    ledger.sql("UPDATE log_head SET position = position + 1")
    forged = _forge(ledger, 15, like=13)
    assert_names(ledger.audit(), 15, forged, "altered")


def test_inserting_one_event_before_the_first(ledger: Ledger) -> None:
    forged = _forge(ledger, 0, like=1)
    assert_names(ledger.audit(), 0, forged, "inserted")


def test_appending_an_event_behind_the_logs_back(ledger: Ledger) -> None:
    forged = _forge(ledger, 41, like=39)  # the log head still says 40
    report = ledger.audit()
    assert_names(report, 41, forged, "beyond_head")
    assert report.pending == 1


def test_rewriting_the_ledger_too_is_caught_by_the_signed_checkpoints(
    ledger: Ledger, store: SqlStore
) -> None:
    """An attacker who alters an event and rebuilds leaves and nodes to match (with our own
    code), but cannot sign: the stored checkpoints no longer match, and bound where."""
    victim = ledger.event_id(25)  # tenant default (i=24), its leaf 12
    ledger.sql("UPDATE events SET action = 'given', subject = 'forged' WHERE position = 25")
    ledger.sql("DELETE FROM ledger_leaves WHERE tenant = 'default'")
    ledger.sql("DELETE FROM ledger_nodes WHERE tenant = 'default'")
    ledger_store = ledger.services.ledger.ledger
    rows = [r for r in ledger_store.event_bytes_after(0, 100) if r.tenant == "default"]
    with ledger_store.transaction() as txn:
        leaves = [LeafInput(r.position, r.event_id, hash_leaf(r.data)) for r in rows]
        append_leaves(txn.node_store("default", leaves), [leaf.leaf_hash for leaf in leaves])
    report = ledger.audit()
    assert not report.ok
    assert {p.kind for p in report.problems} <= {"checkpoint_root", "stored_tree", "consistency"}
    first = report.first_bad_leaf
    assert first is not None and first.kind == "checkpoint_root"
    # Checkpoints were signed at default sizes 5, 10, 15, 20: leaf 12 lies in [10, 15).
    assert first.leaf_index == 10 and first.position == 21
    assert "positions 21 to 29" in first.message
    assert victim not in (first.event_id,)


def test_kept_receipt_and_checkpoint_verify_against_a_newer_tree(
    ledger: Ledger, store: SqlStore
) -> None:
    """An auditor kept a receipt, the inclusion proof and the checkpoint of that time; more
    events came. The old proof still holds, and a consistency proof carries it to the new tree.
    Then someone alters an event added AFTER the kept checkpoint: the kept material still
    verifies (that event is not in it), and `verify database` names the altered one."""
    service = ledger.services.ledger
    kept_event = store.events_after(6, 1)[0]  # position 7, tenant default
    receipt = service.receipt(kept_event).to_json_dict()
    kept = service.inclusion("default", kept_event.event_id)
    fill(store, 30, TENANTS, start=40)
    service.integrate()
    newer = service.checkpoint("default")
    assert newer.tree_size == 35
    consistency = service.consistency("default", kept.tree_size, newer.tree_size)
    keys = parse_verifier_keys(k.to_string() for k in ledger.services.keyring.verifiers("default"))
    check = verify_receipt_bundle(
        receipt,
        kept.to_dict(),
        keys,
        event=kept_event.to_dict(),
        newer_checkpoint=newer.note,
        consistency=consistency.to_dict(),
    )
    assert check.newer is not None and check.newer.size == 35 and check.leaf_index == 3

    victim = ledger.event_id(61)
    ledger.sql("UPDATE events SET purpose = 'analytics2' WHERE position = 61")
    verify_receipt_bundle(receipt, kept.to_dict(), keys, event=kept_event.to_dict())
    assert_names(ledger.audit(), 61, victim, "altered")


def test_a_parallel_audit_reports_the_same(ledger: Ledger, db_url: str) -> None:
    """Worker processes scan ranges of positions; the report is the serial one."""
    victims = {position: ledger.event_id(position) for position in (6, 33)}
    ledger.sql("UPDATE events SET action = 'refused' WHERE position = 33")
    ledger.sql("DELETE FROM events WHERE position = 6")
    serial = audit_database(
        ledger.services.ledger.ledger, ledger.services.keyring.verifiers, page=7
    )
    parallel = audit_database(
        ledger.services.ledger.ledger,
        ledger.services.keyring.verifiers,
        page=7,
        workers=2,
        database_url=db_url,
    )
    assert parallel.problems == serial.problems and parallel.events == serial.events
    assert_names(parallel, 6, victims[6], "missing")
    assert {p.position for p in parallel.problems if p.kind == "altered"} == {33}
