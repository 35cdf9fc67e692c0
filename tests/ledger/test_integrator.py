"""The integrator on each backend: the trees it stores are RFC 9162's, and stay so through
batches, restarts, crashes and racing integrators; the fast canonical bytes are the domain's."""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consentry.domain.errors import NotFoundError
from consentry.domain.events import Action, Actor, Evidence, NewEvent, Source
from consentry.domain.purposes import LegalBasis, Purpose
from consentry.ledger.checkpoint import SigningKey, generate_private_key, verify_checkpoint
from consentry.ledger.hasher import hash_leaf
from consentry.ledger.integrator import CanonicalFormError, Integrator
from consentry.ledger.proof import consistency_proof, inclusion_proof
from consentry.ledger.tree import MissingNodeError, append_leaves, root
from consentry.recording.service import ConsentRequest, EventRequest
from consentry.services import Services
from consentry.storage import SqlStore, open_store
from consentry.storage.ledger_store import (
    EventBytes,
    LeafInput,
    LedgerConflictError,
    LedgerStore,
)
from tests.ledger.conftest import drop_append_only, fill, reference_tree
from tests.storage.conftest import run_raw_sql

KEYS: dict[str, SigningKey] = {}


def signer(tenant: str) -> SigningKey:
    if tenant not in KEYS:
        KEYS[tenant] = SigningKey(f"test/{tenant}", generate_private_key())
    return KEYS[tenant]


def integrator(store: SqlStore, **options: Any) -> Integrator:
    options.setdefault("checkpoint_interval", 0)
    return Integrator(LedgerStore(store), signer, **options)


def assert_matches_reference(store: SqlStore, tenants: tuple[str, ...]) -> None:
    ledger = LedgerStore(store)
    for tenant in tenants:
        expected = reference_tree(store, tenant)
        n = expected.size()
        nodes = ledger.node_store(tenant)
        assert nodes.size() == n
        assert root(nodes) == root(expected)
        for size in sorted({1, 2, 3, n // 2 + 1, n - 1, n} - {0}):
            assert root(nodes, size) == root(expected, size)
            for index in sorted({0, size // 2, size - 1}):
                assert inclusion_proof(nodes, index, size) == inclusion_proof(expected, index, size)
            if size < n:
                assert consistency_proof(nodes, size, n) == consistency_proof(expected, size, n)


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_trees_equal_the_reference_per_tenant(store: SqlStore, batch_size: int) -> None:
    tenants = ("default", "acme", "zeta")
    fill(store, 53, tenants)
    done = integrator(store, batch_size=batch_size).catch_up()
    assert done == 53
    assert_matches_reference(store, tenants)
    ledger = LedgerStore(store)
    assert ledger.integrated_position() == 53 == store.get_offset("ledger")
    # Leaf i of a tenant is its i-th event in position order, whatever the other tenants did.
    acme = store.events_after(0, 100, "acme")
    leaves = ledger.leaves_for_events("acme", [e.event_id for e in acme])
    assert [leaves[str(e.event_id)].leaf_index for e in acme] == list(range(len(acme)))
    assert [leaves[str(e.event_id)].position for e in acme] == [e.position for e in acme]


def test_tenant_names_that_copy_would_misread(store: SqlStore, db_url: str) -> None:
    """PostgreSQL's leaves go in through COPY's text format: its escapes must hold. New tenant
    names are restricted now (domain/inputs.py); these were created before, straight in SQL."""
    tenants = ("back\\slash", "tab\there", "new\nline\r", "\\N")
    for tenant in tenants:
        run_raw_sql(
            db_url,
            "INSERT INTO tenants (name, created_at) VALUES (?, ?)",
            (tenant, "2024-01-01T00:00:00.000000Z"),
        )
    fill(store, 80, tenants)
    keys = {t: SigningKey(f"test/odd-{i}", generate_private_key()) for i, t in enumerate(tenants)}
    ledger = LedgerStore(store)
    assert (
        Integrator(ledger, keys.__getitem__, batch_size=30, checkpoint_interval=0).catch_up() == 80
    )
    assert_matches_reference(store, tenants)
    assert LedgerStore(store).tree_sizes() == dict.fromkeys(tenants, 20)


def test_checkpoints_per_batch_and_per_interval(store: SqlStore) -> None:
    fill(store, 10)
    clock = [0.0]
    worker = integrator(store, batch_size=3, checkpoint_interval=5, monotonic=lambda: clock[0])
    assert worker.integrate_batch() == 3  # the first batch signs at once
    assert worker.integrate_batch() == 3  # within the interval: no checkpoint
    assert worker.flush_checkpoints() == 0
    assert worker.next_checkpoint_in() == 5
    clock[0] = 6
    assert worker.next_checkpoint_in() == 0
    assert worker.flush_checkpoints() == 1  # the quiet tree gets its checkpoint
    clock[0] = 12
    assert worker.integrate_batch() == 3  # due again: signed with the batch
    ledger = LedgerStore(store)
    sizes = [c.tree_size for c in ledger.checkpoints("default")]
    assert sizes == [3, 6, 9]
    for stored in ledger.checkpoints("default"):
        checkpoint = verify_checkpoint(stored.note, [signer("default").verifier])
        assert checkpoint.size == stored.tree_size
        assert (
            checkpoint.root_hash
            == stored.root_hash
            == root(ledger.node_store("default"), checkpoint.size)
        )


def test_restart_resumes_and_repeats_nothing(store: SqlStore) -> None:
    fill(store, 20, ("default", "acme"))
    assert integrator(store, batch_size=8).integrate_batch() == 8
    fill(store, 5, ("default", "acme"), start=20)
    restarted = integrator(store, batch_size=8)  # a new process: nothing in memory
    assert restarted.catch_up() == 17
    assert restarted.catch_up() == 0
    assert integrator(store).catch_up() == 0
    assert_matches_reference(store, ("default", "acme"))
    # Every tree has a checkpoint of its full size (the restart signed the pending ones).
    ledger = LedgerStore(store)
    latest = ledger.latest_checkpoints()
    assert {t: c.tree_size for t, c in latest.items()} == ledger.tree_sizes()


def test_a_crash_mid_batch_leaves_the_last_committed_batch(store: SqlStore) -> None:
    fill(store, 12, ("default", "acme"))
    integrator(store, batch_size=4).integrate_batch()

    def failing(tenant: str) -> SigningKey:
        if tenant == "acme":
            raise OSError("the key store went away while signing")
        return signer(tenant)

    crashing = Integrator(LedgerStore(store), failing, batch_size=6, checkpoint_interval=0)
    with pytest.raises(OSError):
        crashing.integrate_batch()  # default's leaves were written, then acme's signing failed
    ledger = LedgerStore(store)
    assert ledger.integrated_position() == 4
    assert ledger.tree_sizes() == {"default": 2, "acme": 2}
    assert integrator(store).catch_up() == 8
    assert_matches_reference(store, ("default", "acme"))


def test_racing_integrators_cannot_fork_a_tree(store: SqlStore, db_url: str) -> None:
    fill(store, 10)
    ledger = LedgerStore(store)
    # A stale writer: it read the ledger before another integrator committed the same leaves.
    rows = ledger.event_bytes_after(0, 4)
    leaves = [LeafInput(r.position, r.event_id, hash_leaf(r.data)) for r in rows]
    integrator(store, batch_size=4).integrate_batch()
    with pytest.raises(LedgerConflictError), ledger.transaction() as txn:
        nodes = txn.node_store("default", leaves)
        nodes._size = 0  # as it was when this writer looked
        append_leaves(nodes, [leaf.leaf_hash for leaf in leaves])
    assert ledger.tree_size("default") == 4
    # Several integrators at once, each with its own connections: one tree, no duplicates.
    fill(store, 60, start=10)
    stores = [open_store(db_url) for _ in range(3)]
    errors: list[BaseException] = []

    def run(s: SqlStore) -> None:
        try:
            integrator(s, batch_size=5).catch_up()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert not errors
    assert ledger.integrated_position() == 70
    assert_matches_reference(store, ("default",))


def test_missing_nodes_are_an_error_not_a_wrong_proof(
    store: SqlStore, sql: Any, db_url: str
) -> None:
    fill(store, 40)
    integrator(store).catch_up()
    drop_append_only(db_url)
    sql("DELETE FROM ledger_nodes WHERE level = 4 AND node_index = 0")
    nodes = LedgerStore(store).node_store("default")
    with pytest.raises(MissingNodeError):
        inclusion_proof(nodes, 20, 40)  # its sibling covers leaves 0-15: node (4, 0)
    assert len(inclusion_proof(nodes, 3, 40)) == 6  # proofs not needing it still work


def test_a_hole_wider_than_a_batch_does_not_stall_the_integrator(
    store: SqlStore, sql: Any, db_url: str
) -> None:
    """Batches read a bounded range of positions; events deleted out of band before they were
    integrated leave ranges with no event, and the integrator must look past them."""
    fill(store, 30)
    drop_append_only(db_url)
    sql("DELETE FROM events WHERE position >= 5 AND position <= 20")
    assert integrator(store, batch_size=5).catch_up() == 14
    ledger = LedgerStore(store)
    assert ledger.integrated_position() == 30
    assert ledger.tree_size("default") == 14


class DivergingLedger(LedgerStore):
    """A storage whose row-to-bytes path no longer matches the domain's canonical form."""

    def event_bytes_after(
        self, position: int, limit: int, upto: int | None = None
    ) -> list[EventBytes]:
        return [
            r._replace(data=r.data + b" ") for r in super().event_bytes_after(position, limit, upto)
        ]


class DivergingHashes(LedgerStore):
    """A storage whose leaf hashes (PostgreSQL's sha256 of its JSON) are not the domain's."""

    def leaf_inputs_after(
        self, position: int, limit: int, upto: int | None = None
    ) -> list[LeafInput]:
        return [
            r._replace(leaf_hash=hash_leaf(b"other"))
            for r in super().leaf_inputs_after(position, limit, upto)
        ]


@pytest.mark.parametrize("diverging", [DivergingLedger, DivergingHashes])
def test_the_integrator_refuses_bytes_other_than_the_domains(
    store: SqlStore, diverging: type[LedgerStore]
) -> None:
    fill(store, 3)
    with pytest.raises(CanonicalFormError):
        Integrator(diverging(store), signer).integrate_batch()
    assert LedgerStore(store).integrated_position() == 0


texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    subject=texts.filter(lambda s: s.strip()),
    user_agent=st.none() | texts,
    raw_signal=st.none() | texts,
    notice_version=st.none() | st.integers(1, 2**31 - 1),
    micros=st.integers(0, 999_999),
    year=st.integers(1, 9998),
)
def test_fast_canonical_bytes_are_the_domains(
    store: SqlStore,
    subject: str,
    user_agent: str | None,
    raw_signal: str | None,
    notice_version: int | None,
    micros: int,
    year: int,
) -> None:
    occurred = datetime(year, 3, 4, 5, 6, 7, micros, tzinfo=UTC)
    new = NewEvent(
        event_id=uuid.uuid4(),
        tenant="default",
        subject=subject,
        purpose="p",
        action=Action.GIVEN,
        legal_basis=LegalBasis.CONSENT,
        occurred_at=occurred,
        evidence=Evidence(
            source=Source.API,
            actor=Actor.GUARDIAN,
            notice_id="n" if notice_version else None,
            notice_version=notice_version,
            user_agent=user_agent,
            raw_signal=raw_signal,
        ),
        expires_at=occurred + timedelta(days=1),
    )
    recorded = store.append("default", [new]).events[0]
    ledger = LedgerStore(store)
    fast = ledger.event_bytes_after(recorded.position - 1, 1)[0]
    assert fast.data == recorded.canonical_bytes()
    assert ledger.event_rows(recorded.position, recorded.position)[0][3].encode() == fast.data
    # The leaf hash the integrator and the audit read (PostgreSQL computes it in the server).
    leaf_hash = hash_leaf(recorded.canonical_bytes())
    assert ledger.leaf_inputs_after(recorded.position - 1, 1) == [
        LeafInput(recorded.position, str(recorded.event_id), leaf_hash, "default")
    ]
    assert ledger.event_leaf_hashes(recorded.position, recorded.position) == [
        ("default", leaf_hash)
    ]
    assert ledger.canonical_matches_domain(recorded.position) is True


def test_commit_to_proof_available_under_a_second(services: Services) -> None:
    """In a server: the recorder wakes the integrator thread; measure commit -> proof."""
    services.store.ensure_tenant("default")
    services.recorder.add_purpose(
        "default", Purpose(id="email", name="Email", legal_basis=LegalBasis.CONSENT)
    )
    background = services.ledger.background()
    services.recorder.listeners.append(background.wake)
    latencies = []
    with background:
        for i in range(40):
            result = services.recorder.record(
                "default",
                ConsentRequest(
                    subject=f"s{i}",
                    source=Source.API,
                    events=[EventRequest("email", Action.GIVEN)],
                ),
            )
            committed = time.perf_counter()
            event_id = result.events[0].event_id
            while True:
                try:
                    services.ledger.inclusion("default", event_id)
                    break
                except NotFoundError:
                    assert time.perf_counter() - committed < 5
                    time.sleep(0.001)
            latencies.append(time.perf_counter() - committed)
    assert background.errors == 0
    assert max(latencies) < 1.0, latencies
    assert statistics.median(latencies) < 0.2


def test_polling_finds_writes_of_other_processes(services: Services, db_url: str) -> None:
    background = services.ledger.background()
    background.poll_interval = 0.05
    with background:
        other = open_store(db_url)  # another process's store: no listener wakes us
        try:
            fill(other, 3)
        finally:
            other.close()
        deadline = time.monotonic() + 5
        while services.ledger.ledger.integrated_position() < 3:
            assert time.monotonic() < deadline
            time.sleep(0.01)
