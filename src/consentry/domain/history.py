"""Bitemporal history: the state of a subject's purposes as of any moment.

Valid time is `occurred_at` (when the person acted); transaction time is `recorded_at` (when we
knew). "What was the decision at T?" filters by valid time; "...as we knew it at T2?" also filters
by transaction time. The fold is invariant 4: the greatest occurred_at wins, ties by position, so
a late event with an older legal time is kept in history but never overrides a newer decision.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from consentry.domain.events import RecordedEvent


def supersedes(candidate: RecordedEvent, current: RecordedEvent | None) -> bool:
    """Whether `candidate` becomes the state over `current` (invariant 4)."""
    return current is None or candidate.sort_key > current.sort_key


def latest_per_purpose(
    events: Iterable[RecordedEvent],
    *,
    as_of: datetime | None = None,
    known_at: datetime | None = None,
) -> dict[str, RecordedEvent]:
    """The event that decides each purpose, seen from (as_of, known_at); None means now."""
    state: dict[str, RecordedEvent] = {}
    for event in events:
        if as_of is not None and event.occurred_at > as_of:
            continue
        if known_at is not None and event.recorded_at > known_at:
            continue
        if supersedes(event, state.get(event.purpose)):
            state[event.purpose] = event
    return state
