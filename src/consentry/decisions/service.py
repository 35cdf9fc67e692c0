"""The read path: decisions and bitemporal state, from the projection or the history.

check() reads the state projection and calls the domain's decide(); any failure to read becomes
a StoreUnavailableError that the boundary turns into `unavailable` (never permitted by accident).
A min_token newer than the log's head waits briefly and is then refused, because answering from
a state that may not include the caller's own write would break read-your-writes (invariant 7).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from consentry.config import Settings
from consentry.domain.decide import Decision, Signals, StateEntry, decide
from consentry.domain.errors import ValidationError
from consentry.domain.events import RecordedEvent
from consentry.domain.history import latest_per_purpose
from consentry.domain.notices import material_changes
from consentry.domain.purposes import Purpose
from consentry.domain.regimes import Regime, regime_for
from consentry.storage.base import ConsentStore
from consentry.storage.catalog import Catalog
from consentry.storage.sql import utcnow


class TokenAheadError(ValidationError):
    """The caller's token names a position this log has not reached."""

    code = "token_ahead"


def parse_token(token: str | int | None) -> int | None:
    """Tokens are decimal log positions; anything else is a client error."""
    if token is None or token == "":
        return None
    try:
        value = int(token)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"min_token {token!r} is not a token returned by a write") from exc
    if value < 0:
        raise ValidationError("min_token cannot be negative")
    return value


@dataclass(frozen=True, slots=True)
class PurposeState:
    """One purpose of a subject as seen from some moment: the decision and the event behind it."""

    purpose: Purpose
    decision: Decision
    event: RecordedEvent | None


@dataclass
class DecisionService:
    store: ConsentStore
    settings: Settings
    catalog: Catalog
    clock: Callable[[], datetime] = utcnow

    def regime(self, jurisdiction: str | None) -> Regime:
        return regime_for(jurisdiction, self.settings.default_regime)

    def wait_for(self, min_token: int | None) -> None:
        """Block until the log's head reaches `min_token`, or refuse after the configured wait."""
        if min_token is None:
            return
        deadline = time.monotonic() + self.settings.min_token_wait_ms / 1000
        while True:
            head = self.store.head()
            if head >= min_token:
                return
            if time.monotonic() >= deadline:
                raise TokenAheadError(
                    f"min_token {min_token} is ahead of this log (head {head}); was it issued by"
                    " another Consentry database?"
                )
            time.sleep(0.01)

    def _purpose(self, tenant: str, purpose_id: str) -> Purpose:
        purpose = self.catalog.purpose(tenant, purpose_id)
        if purpose is None:
            raise ValidationError(f"unknown purpose {purpose_id!r}")
        return purpose

    def check(
        self,
        tenant: str,
        subject: str,
        purpose_id: str,
        *,
        min_token: int | None = None,
        signals: Signals = Signals(),
    ) -> Decision:
        return self.check_many(
            tenant, [(subject, purpose_id)], min_token=min_token, signals=signals
        )[0]

    def check_many(
        self,
        tenant: str,
        checks: Sequence[tuple[str, str]],
        *,
        min_token: int | None = None,
        signals: Signals = Signals(),
    ) -> list[Decision]:
        """Decide many (subject, purpose) pairs; each subject's state is read once."""
        if len(checks) > self.settings.max_batch_checks:
            raise ValidationError(
                f"a batch carries at most {self.settings.max_batch_checks} checks, this one has"
                f" {len(checks)}: split it"
            )
        self.wait_for(min_token)
        catalog = self.catalog.get(tenant)
        purposes = [self._purpose(tenant, p) for _, p in checks]
        states: dict[str, dict[str, StateEntry]] = {}
        now = self.clock()
        out = []
        for (subject, _), purpose in zip(checks, purposes, strict=True):
            if subject not in states:
                states[subject] = {
                    e.purpose: StateEntry.of(e) for e in self.store.subject_state(tenant, subject)
                }
            entries = states[subject]
            entry = entries.get(purpose.id)
            jurisdiction = signals.jurisdiction or _jurisdiction(entry, entries)
            out.append(
                decide(
                    subject,
                    purpose,
                    entry,
                    now=now,
                    regime=self.regime(jurisdiction),
                    changes=catalog.changes.get(purpose.id, ()),
                    signals=signals,
                )
            )
        return out

    def state_as_of(
        self,
        tenant: str,
        subject: str,
        *,
        as_of: datetime | None = None,
        known_at: datetime | None = None,
        jurisdiction: str | None = None,
    ) -> list[PurposeState]:
        """Every purpose of the tenant for one subject, as of `as_of`, as known at `known_at`.

        Decided with the notices published by then, so the answer is what we would have said.
        """
        moment = as_of or self.clock()
        history = self.store.subject_history(tenant, subject)
        latest = latest_per_purpose(history, as_of=as_of, known_at=known_at)
        catalog = self.catalog.get(tenant)
        visible_notices = [
            n
            for n in catalog.notices
            if n.published_at <= moment and (known_at is None or n.published_at <= known_at)
        ]
        entries = {p: StateEntry.of(e) for p, e in latest.items()}
        out = []
        for purpose in catalog.purposes.values():
            event = latest.get(purpose.id)
            entry = entries.get(purpose.id)
            decision = decide(
                subject,
                purpose,
                entry,
                now=moment,
                regime=self.regime(jurisdiction or _jurisdiction(entry, entries)),
                changes=material_changes(visible_notices, purpose.id),
            )
            out.append(PurposeState(purpose, decision, event))
        return out


def _jurisdiction(entry: StateEntry | None, entries: dict[str, StateEntry]) -> str | None:
    """Where the person is: from the event behind this purpose, else their most recent event."""
    if entry is not None and entry.jurisdiction:
        return entry.jurisdiction
    latest = max(
        (e for e in entries.values() if e.jurisdiction),
        key=lambda e: (e.occurred_at, e.position),
        default=None,
    )
    return latest.jurisdiction if latest else None
