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
from consentry.decisions.local import Answer, StateReader, infer_jurisdiction
from consentry.domain.decide import NO_SIGNALS, Decision, Signals, StateEntry, decide
from consentry.domain.errors import ValidationError
from consentry.domain.events import RecordedEvent
from consentry.domain.history import latest_per_purpose
from consentry.domain.inputs import check_time
from consentry.domain.notices import material_changes
from consentry.domain.purposes import Purpose
from consentry.domain.regimes import Regime, regime_for
from consentry.storage.base import ConsentStore
from consentry.storage.catalog import Catalog
from consentry.storage.sql import utcnow


class TokenAheadError(ValidationError):
    """The caller's token names a position this log has not reached."""

    code = "token_ahead"


class TokenPending(Exception):
    """wait_for(block=False): the head has not reached the token, and the wait is not over."""


TOKEN_POLL_SECONDS = 0.01


def parse_token(token: str | int | None) -> int | None:
    """Tokens are decimal log positions; anything else is a client error."""
    if token is None or token == "":
        return None
    try:
        value = int(token)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"min_token {token!r} is not a token returned by a write") from exc
    if not 0 <= value < 2**63:
        raise ValidationError("min_token is not a position of this log")
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
    reader: StateReader | None = None
    """L1 and Redis in front of the state table (decisions/local.py); None = database only."""

    def regime(self, jurisdiction: str | None) -> Regime:
        return regime_for(jurisdiction, self.settings.default_regime)

    def token_deadline(self) -> float:
        """The monotonic time until which a check may wait for its min_token."""
        return time.monotonic() + self.settings.min_token_wait_ms / 1000

    def wait_for(
        self, min_token: int | None, deadline: float | None = None, *, block: bool = True
    ) -> None:
        """Return once the log's head reaches `min_token`; refuse past `deadline`.

        With block=False nothing sleeps: a token not reached yet raises TokenPending, so that
        an event loop can wait without holding a thread (api/decisions.py) and ask again.
        """
        if min_token is None:
            return
        if deadline is None:
            deadline = self.token_deadline()
        while True:
            head = self.store.head()
            if head >= min_token:
                return
            if time.monotonic() >= deadline:
                raise TokenAheadError(
                    f"min_token {min_token} is ahead of this log (head {head}); was it issued by"
                    " another Consentry database?"
                )
            if not block:
                raise TokenPending(min_token)
            time.sleep(TOKEN_POLL_SECONDS)

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
        signals: Signals = NO_SIGNALS,
    ) -> list[Decision]:
        """Decide many (subject, purpose) pairs; each subject's state is read once."""
        found = self.answers(tenant, checks, min_token=min_token, signals=signals)
        return [a.decision for a in found]

    def answers(
        self,
        tenant: str,
        checks: Sequence[tuple[str, str]],
        *,
        min_token: int | None = None,
        signals: Signals = NO_SIGNALS,
    ) -> list[Answer]:
        """check_many, keeping the cached answers so a transport can reuse their bodies."""
        self.check_batch(checks)
        self.wait_for(min_token)
        reader = self.active_reader
        head = reader.sync()
        catalog = self.catalog.get(tenant)
        known = catalog.purposes
        resolved = [known.get(p) or self._purpose(tenant, p) for _, p in checks]
        if len(resolved) and any(p.id not in known for p in resolved):
            catalog = self.catalog.get(tenant)  # reloaded by _purpose: a purpose just created
        views = reader.views(tenant, [s for s, _ in checks], head)
        now = self.clock()
        answer = reader.answer
        version = reader.catalog_version(tenant, catalog)
        return [
            answer(views[subject], subject, purpose, catalog, now, signals, version)
            for (subject, _), purpose in zip(checks, resolved, strict=True)
        ]

    def check_batch(self, checks: Sequence[tuple[str, str]]) -> None:
        if len(checks) > self.settings.max_batch_checks:
            raise ValidationError(
                f"a batch carries at most {self.settings.max_batch_checks} checks, this one has"
                f" {len(checks)}: split it"
            )

    @property
    def active_reader(self) -> StateReader:
        """The configured read path, else one that reads the database alone."""
        if self.reader is None:
            self.reader = StateReader(self.store, self.regime, local=False)
        return self.reader

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

        Decided with the notices published by then and, with `known_at`, recorded by then: a
        version recorded later (even backdated) is not what we knew, so the answer is what we
        would have said. Both times must lie in the accepted range (domain/inputs.py).
        """
        now = self.clock()
        skew = self.settings.max_clock_skew_seconds
        for name, value in (("as_of", as_of), ("known_at", known_at)):
            if value is not None:
                check_time(name, value, now=now, skew_seconds=skew)
        moment = as_of or now
        history = self.store.subject_history(tenant, subject)
        latest = latest_per_purpose(history, as_of=as_of, known_at=known_at)
        catalog = self.catalog.get(tenant)
        visible_notices = [
            n
            for n in catalog.notices
            if n.published_at <= moment
            and (known_at is None or n.recorded_at is None or n.recorded_at <= known_at)
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


_jurisdiction = infer_jurisdiction
