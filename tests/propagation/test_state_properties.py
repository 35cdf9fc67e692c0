"""Delivery order does not matter: a consumer fed a history shuffled and with duplicates reaches
exactly the state of in-order delivery (and of the log's own fold, latest_per_purpose)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consentry.domain.events import Action, Evidence, RecordedEvent, Source
from consentry.domain.history import latest_per_purpose
from consentry.domain.purposes import LegalBasis
from consentry.propagation.consumer import Applier
from consentry.propagation.lag import LagMetrics
from consentry.propagation.state import Change, LocalState, MemoryState, SqliteState

BASE = datetime(2026, 1, 1, tzinfo=UTC)
METRICS = LagMetrics()


@st.composite
def histories(draw: st.DrawFn) -> list[RecordedEvent]:
    """A log: positions 1..n in commit order, subject_version counting per subject, and
    occurred_at drawn from a few values so that late events and exact ties are common."""
    n = draw(st.integers(1, 30))
    versions: dict[tuple[str, str], int] = {}
    events = []
    for position in range(1, n + 1):
        tenant = draw(st.sampled_from(["t1", "t2"]))
        subject = draw(st.sampled_from(["a", "b", "c"]))
        purpose = draw(st.sampled_from(["email", "ads"]))
        action = draw(st.sampled_from([Action.GIVEN, Action.WITHDRAWN, Action.REFUSED]))
        minute = draw(st.integers(0, 6))
        versions[(tenant, subject)] = versions.get((tenant, subject), 0) + 1
        events.append(
            RecordedEvent(
                position=position,
                subject_version=versions[(tenant, subject)],
                recorded_at=BASE + timedelta(hours=1, seconds=position),
                event_id=uuid.UUID(int=position),
                tenant=tenant,
                subject=subject,
                purpose=purpose,
                action=action,
                legal_basis=LegalBasis.CONSENT,
                occurred_at=BASE + timedelta(minutes=minute),
                evidence=Evidence(Source.API),
            )
        )
    return events


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[RecordedEvent], list[RecordedEvent]]:
    """A history and one delivery of it: every event at least once, some several times, in any
    order (what a relay restart and a consumer rebalance can produce together)."""
    history = draw(histories())
    extra = draw(st.lists(st.sampled_from(history), max_size=len(history) * 2))
    delivered = draw(st.permutations(history + extra))
    return history, delivered


def fold(events: list[RecordedEvent]) -> dict[tuple[str, str, str], uuid.UUID]:
    """The log's own rule (domain/history.py), per (tenant, subject)."""
    out: dict[tuple[str, str, str], uuid.UUID] = {}
    for tenant, subject in {(e.tenant, e.subject) for e in events}:
        mine = [e for e in events if (e.tenant, e.subject) == (tenant, subject)]
        for purpose, event in latest_per_purpose(mine).items():
            out[(tenant, subject, purpose)] = event.event_id
    return out


def final(state: LocalState) -> dict[tuple[str, str, str], uuid.UUID]:
    return {k: v.event_id for k, v in state.snapshot().items()}


@given(deliveries())
@settings(max_examples=200, deadline=None)
def test_shuffled_and_duplicated_delivery_reaches_the_in_order_state(
    case: tuple[list[RecordedEvent], list[RecordedEvent]],
) -> None:
    history, delivered = case
    in_order, shuffled = MemoryState(), MemoryState()
    seen_in_order: list[Change] = []
    seen_shuffled: list[Change] = []
    ordered = Applier(in_order, seen_in_order.append, metrics=METRICS)
    for e in history:
        ordered.apply(e)
    applier = Applier(shuffled, seen_shuffled.append, metrics=METRICS)
    for e in delivered:
        applier.apply(e)
    assert final(shuffled) == final(in_order) == fold(history)
    # Every event reached the handler exactly once, duplicates never.
    assert sorted(c.event.position for c in seen_shuffled) == [e.position for e in history]
    assert len(seen_in_order) == len(history)


@given(deliveries(), st.data())
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_the_file_state_survives_restarts_between_any_two_deliveries(
    tmp_path: Path,
    case: tuple[list[RecordedEvent], list[RecordedEvent]],
    data: st.DataObject,
) -> None:
    """SqliteState: flush and reopen at arbitrary points (a consumer restarting from its
    committed offsets); the result is still the in-order state."""
    history, delivered = case
    path = tmp_path / f"{uuid.uuid4().hex}.db"
    restarts = set(data.draw(st.lists(st.integers(0, len(delivered)), max_size=4)))
    state = SqliteState(path)
    applied = 0
    for index, e in enumerate(delivered):
        if index in restarts:
            state.close()
            state = SqliteState(path)
        if Applier(state, metrics=METRICS).apply(e) is not None:
            applied += 1
    try:
        assert final(state) == fold(history)
        assert applied == len(history)
    finally:
        state.close()


def test_a_late_event_is_kept_but_does_not_decide() -> None:
    e1, e2 = (
        RecordedEvent(
            position=p,
            subject_version=p,
            recorded_at=BASE,
            event_id=uuid.uuid4(),
            tenant="t",
            subject="s",
            purpose="email",
            action=a,
            legal_basis=LegalBasis.CONSENT,
            occurred_at=BASE + timedelta(minutes=m),
            evidence=Evidence(Source.API),
        )
        for p, a, m in ((1, Action.WITHDRAWN, 10), (2, Action.GIVEN, 5))
    )
    state = MemoryState()
    first = Applier(state).apply(e1)
    late = Applier(state).apply(e2)
    assert first is not None and first.decides
    assert late is not None and not late.decides and late.previous == e1
    assert state.current("t", "s", "email") == e1


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_a_failing_handler_stores_nothing(kind: str, tmp_path: Path) -> None:
    event = RecordedEvent(
        position=1,
        subject_version=1,
        recorded_at=BASE,
        event_id=uuid.uuid4(),
        tenant="t",
        subject="s",
        purpose="email",
        action=Action.GIVEN,
        legal_basis=LegalBasis.CONSENT,
        occurred_at=BASE,
        evidence=Evidence(Source.API),
    )
    state: LocalState = MemoryState() if kind == "memory" else SqliteState(tmp_path / "s.db")

    def boom(change: Change) -> None:
        raise RuntimeError("the email platform is down")

    with pytest.raises(RuntimeError):
        Applier(state, boom).apply(event)
    assert state.current("t", "s", "email") is None
    change = Applier(state).apply(event)  # delivered again (a replay): applied now
    assert change is not None and change.decides
    assert Applier(state).apply(event) is None
    state.close()


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_the_same_event_id_in_two_tenants_is_two_events(kind: str, tmp_path: Path) -> None:
    """Event ids are unique per tenant (migration 0005): a consumer of several tenants must not
    drop one tenant's event as a duplicate of another's."""
    shared = uuid.uuid4()
    events = [
        RecordedEvent(
            position=p,
            subject_version=1,
            recorded_at=BASE,
            event_id=shared,
            tenant=tenant,
            subject="s",
            purpose="email",
            action=Action.GIVEN,
            legal_basis=LegalBasis.CONSENT,
            occurred_at=BASE,
            evidence=Evidence(Source.API),
        )
        for p, tenant in ((1, "t1"), (2, "t2"))
    ]
    state: LocalState = MemoryState() if kind == "memory" else SqliteState(tmp_path / "s.db")
    try:
        assert all(Applier(state).apply(e) is not None for e in events)
        assert [state.current(t, "s", "email") for t in ("t1", "t2")] == events
        assert Applier(state).apply(events[1]) is None, "a true duplicate is still dropped"
    finally:
        state.close()
