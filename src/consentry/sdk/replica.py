"""A process-local copy of one tenant's consent state: checks in microseconds, kept current.

Why: every marketing send, analytics event and ad call asks "may I?", and a network round trip
per question (150-500 us to Redis here, more to the server) costs more than the work it guards.
The replica answers from memory with the same decide() the server uses, so the two cannot
disagree, and follows the log so that a withdrawal reaches it within milliseconds.

- Bootstrap: GET /v1/purposes and /v1/notices (the catalogue), then /v1/snapshot page by page
  (the state), starting the feed at the snapshot's position. Events committed while paging come
  again through the feed and are applied by the latest-legal-time rule (invariant 4), so the
  copy converges.
- Follow: a background thread long-polls GET /v1/changes (the HTTP change feed, the default).
  Any other transport plugs in as an iterator of CloudEvents (`source=`; the Kafka consumer of
  consentry.propagation yields exactly those), through `apply_cloudevent`.
- Freshness: a check carrying a token (a write's position) newer than the replica's position
  waits up to `token_wait` seconds for the feed, then asks the server (min_token), or answers
  unavailable without a client. When the feed has not confirmed the replica current for
  `max_lag` seconds, checks go to the server (or answer unavailable): a replica cut off from its
  feed must not keep permitting on old state.
- What "the replica's position" may claim. Only a gapless transport moves it: the snapshot, and
  the HTTP feed's `next` (every event up to it has been delivered). Events from any other
  source (Kafka: ordered per subject, NOT across partitions) prove only their own subject's
  past: a token is reached for a subject once an event of that subject at or above it has been
  applied (the subject's events are delivered in order), else the replica waits or asks the
  server. An event at position 105 of another partition says nothing about a withdrawal at 100.
- A log that went backwards (the server's database restored from a backup, or another
  installation behind the same URL) answers the feed with a `next` below the position asked
  after: the replica bootstraps again rather than keep a state that log no longer has.
- Cost: the hot path is two dict lookups and a clock read. Decisions are cached per
  (subject, purpose) until the subject changes, the catalogue changes, the decision's own
  deadline (valid_until, a notice's publication or grace end), or the feed's freshness runs out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from consentry.decisions.local import decision_deadline, infer_jurisdiction
from consentry.domain.decide import Decision, Signals, StateEntry, decide, unavailable
from consentry.domain.events import Action, Actor, RecordedEvent, Source, parse_time
from consentry.domain.notices import MaterialChange, Notice, material_changes
from consentry.domain.purposes import LegalBasis, OptOutCategory, Purpose
from consentry.domain.regimes import Regime, regime_for
from consentry.propagation.envelope import from_cloudevent
from consentry.sdk.client import Client, ConsentryError

log = logging.getLogger("consentry.sdk.replica")

_time = time.time
_EMPTY: dict[str, StateEntry] = {}
_MAX_AGE = timedelta(seconds=60)


def purpose_from_dict(d: Mapping[str, Any]) -> Purpose:
    return Purpose(
        id=d["id"],
        name=d["name"],
        legal_basis=LegalBasis(d["legal_basis"]),
        description=d.get("description") or "",
        required=bool(d.get("required")),
        lifetime_days=d.get("lifetime_days"),
        opt_out_category=OptOutCategory(d["opt_out_category"])
        if d.get("opt_out_category")
        else None,
    )


def notice_from_dict(d: Mapping[str, Any]) -> Notice:
    return Notice(
        id=d["id"],
        version=int(d["version"]),
        text=d["text"],
        purposes=tuple(d["purposes"]),
        published_at=parse_time(d["published_at"]),
        material=bool(d.get("material")),
        grace_days=int(d.get("grace_days", 0)),
    )


def entry_from_dict(d: Mapping[str, Any]) -> StateEntry:
    """A state entry from an event's JSON (RecordedEvent.to_dict form)."""
    return StateEntry(
        position=int(d["position"]),
        action=Action(d["action"]),
        occurred_at=parse_time(d["occurred_at"]),
        recorded_at=parse_time(d["recorded_at"]),
        source=Source(d["source"]),
        actor=Actor(d["actor"]),
        jurisdiction=d.get("jurisdiction"),
        notice_id=d.get("notice_id"),
        notice_version=d.get("notice_version"),
    )


class Replica:
    """One tenant's state in memory, following the server's change feed (or any source)."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        client: Client | None = None,
        default_regime: Regime = Regime.OPT_IN,
        poll_wait: float = 10.0,
        token_wait: float = 0.1,
        max_lag: float | None = 30.0,
        catalog_refresh: float = 30.0,
        page_size: int = 1000,
        source: Iterable[Mapping[str, Any]] | None = None,
        ask_server: bool = True,
        start: bool = True,
    ) -> None:
        if client is None:
            if base_url is None or api_key is None:
                raise ValueError("give base_url and api_key, or a Client")
            client = Client(base_url, api_key)
        self.client = client
        self.default_regime = default_regime
        self.poll_wait = poll_wait
        self.token_wait = token_wait
        self.max_lag = max_lag
        self.catalog_refresh = catalog_refresh
        self.page_size = page_size
        self.source = source
        self.ask_server = ask_server
        self._state: dict[str, dict[str, StateEntry]] = {}
        self._answers: dict[str, dict[str, tuple[Decision, float]]] = {}
        self._purposes: dict[str, Purpose] = {}
        self._changes: dict[str, tuple[MaterialChange, ...]] = {}
        self._notices: tuple[Notice, ...] = ()
        self._position = 0
        # Per subject, the highest position applied from a source that is not gapless.
        self._subject_positions: dict[str, int] = {}
        self._confirmed_at = 0.0  # wall time the feed last confirmed the replica current
        self._fresh_until = 0.0 if max_lag is not None else float("inf")
        self._catalog_at = 0.0
        self._lock = threading.Lock()
        self._advanced = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready = False
        self.applied = 0
        self.errors = 0
        # A long poll holds its request for poll_wait seconds: the read timeout must exceed it.
        self._feed = httpx.Client(
            base_url=client.base_url,
            headers=client.http.headers,
            timeout=httpx.Timeout(poll_wait + 10.0, connect=2.0),
        )
        if start:
            self.start()

    # Lifecycle ----------------------------------------------------------------------------------
    def start(self) -> Replica:
        """Bootstrap (blocking) and start following in a daemon thread."""
        self.bootstrap()
        self._thread = threading.Thread(target=self._follow, name="consentry-replica", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop following; a long poll in flight is abandoned (the thread is a daemon)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=0.5)
        if self._thread is None or not self._thread.is_alive():
            self._feed.close()

    def __enter__(self) -> Replica:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def bootstrap(self) -> None:
        """Load the catalogue and the whole state; the feed starts at the snapshot's position."""
        self.refresh_catalog()
        after_subject = ""
        position: int | None = None
        state: dict[str, dict[str, StateEntry]] = {}
        while True:
            page = self.client.request(
                "GET",
                "/v1/snapshot",
                params={"after_subject": after_subject, "limit": self.page_size},
            )
            if position is None:
                position = int(page["position"])
            for d in page["entries"]:
                state.setdefault(d["subject"], {})[d["purpose"]] = entry_from_dict(d)
            if not page.get("next_subject"):
                break
            after_subject = page["next_subject"]
        with self._lock:
            self._state = state
            self._answers = {}
            self._subject_positions = {}
            self._position = position or 0
            self._confirm()
            self._ready = True
            self._advanced.notify_all()

    def refresh_catalog(self) -> None:
        """Reload purposes and notices; drops cached decisions when they changed."""
        purposes = {
            p.id: p
            for p in (
                purpose_from_dict(d) for d in self.client.request("GET", "/v1/purposes")["purposes"]
            )
        }
        notices = tuple(
            notice_from_dict(d) for d in self.client.request("GET", "/v1/notices")["notices"]
        )
        with self._lock:
            if purposes != self._purposes or notices != self._notices:
                self._purposes = purposes
                self._notices = notices
                self._changes = {pid: material_changes(notices, pid) for pid in purposes}
                self._answers = {}
            self._catalog_at = time.monotonic()

    # Applying the stream ------------------------------------------------------------------------
    def _confirm(self) -> None:
        self._confirmed_at = _time()
        if self.max_lag is not None:
            self._fresh_until = self._confirmed_at + self.max_lag

    def apply(self, events: Iterable[RecordedEvent], position: int | None = None) -> None:
        """Apply events (any order, duplicates allowed: invariant 4 decides).

        `position` is given only by a gapless transport (the HTTP feed's `next`): every event
        up to it has been delivered, so the replica's position moves there. Without it, each
        event proves only its own subject's past (module docstring).
        """
        with self._lock:
            seen = self._subject_positions
            for e in events:
                entries = self._state.get(e.subject)
                if entries is None:
                    entries = self._state[e.subject] = {}
                current = entries.get(e.purpose)
                # Invariant 4, as domain.history.supersedes states it for two events.
                if current is None or e.sort_key > (current.occurred_at, current.position):
                    entries[e.purpose] = StateEntry.of(e)
                self._answers.pop(e.subject, None)
                self.applied += 1
                if position is None and e.position > seen.get(e.subject, -1):
                    seen[e.subject] = e.position
            if position is not None and position > self._position:
                self._position = position
            self._advanced.notify_all()

    def apply_cloudevent(self, envelope: Mapping[str, Any]) -> None:
        """For any transport that yields CloudEvents (Kafka, SSE, a test)."""
        self.apply([from_cloudevent(envelope)])
        with self._lock:
            self._confirm()

    def _follow(self) -> None:
        if self.source is not None:
            try:
                for envelope in self.source:
                    if self._stop.is_set():
                        return
                    self.apply_cloudevent(envelope)
            except Exception:
                log.exception("the replica's event source failed")
                self.errors += 1
            return
        backoff = 0.05
        while not self._stop.is_set():
            try:
                response = self._feed.get(
                    "/v1/changes",
                    params={"after": self._position, "limit": 1000, "wait": self.poll_wait},
                )
                response.raise_for_status()
                body = response.json()
                if int(body["next"]) < self._position:
                    log.warning(
                        "the server's log is behind this replica (next %s < %s): a restored or"
                        " another database; bootstrapping again",
                        body["next"],
                        self._position,
                    )
                    self.bootstrap()
                    continue
                self.apply((from_cloudevent(e) for e in body["events"]), int(body["next"]))
                with self._lock:
                    self._confirm()
                backoff = 0.05
                if time.monotonic() - self._catalog_at > self.catalog_refresh:
                    self.refresh_catalog()
            except Exception as exc:
                self.errors += 1
                log.warning("change feed unavailable (%s); retrying in %.2f s", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)

    # Reading ------------------------------------------------------------------------------------
    @property
    def position(self) -> int:
        """The log position up to which every event of the tenant has been applied."""
        return self._position

    @property
    def lag(self) -> float:
        """Seconds since the feed last confirmed the replica current (0 right after a poll)."""
        return max(0.0, _time() - self._confirmed_at) if self._confirmed_at else float("inf")

    def stats(self) -> dict[str, Any]:
        return {
            "position": self._position,
            "lag_seconds": self.lag,
            "subjects": len(self._state),
            "applied": self.applied,
            "errors": self.errors,
            "ready": self._ready,
        }

    def reached(self, position: int, subject: str | None = None) -> bool:
        """True when every event up to `position` (of `subject`, if given) has been applied."""
        if position <= self._position:
            return True
        return subject is not None and self._subject_positions.get(subject, -1) >= position

    def wait_for(self, position: int, timeout: float, subject: str | None = None) -> bool:
        """Block until the replica reaches `position` (for `subject`), at most `timeout` s."""
        deadline = time.monotonic() + timeout
        with self._advanced:
            while not self.reached(position, subject):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._advanced.wait(remaining)
        return True

    def check(
        self,
        subject: str,
        purpose: str,
        token: int | None = None,
        signals: Signals | None = None,
    ) -> Decision:
        """May we process `subject`'s data for `purpose`, now? Never raises; fails closed."""
        if token is None and signals is None:
            cached = self._answers.get(subject)
            if cached is not None:
                hit = cached.get(purpose)
                if hit is not None and hit[1] > _time():
                    return hit[0]
        return self._check(subject, purpose, token, signals)

    def check_many(
        self,
        checks: Sequence[tuple[str, str]],
        token: int | None = None,
        signals: Signals | None = None,
    ) -> list[Decision]:
        check = self.check
        return [check(s, p, token, signals) for s, p in checks]

    def _check(
        self, subject: str, purpose: str, token: int | None, signals: Signals | None
    ) -> Decision:
        now_wall = _time()
        if (
            token is not None
            and not self.reached(token, subject)
            and not self.wait_for(token, self.token_wait, subject)
        ):
            return self._from_server(subject, purpose, token, signals, "token ahead")
        if not self._ready or now_wall >= self._fresh_until:
            return self._from_server(subject, purpose, token, signals, "feed stale")
        with self._lock:
            definition = self._purposes.get(purpose)
            if definition is None:
                log.warning("unknown purpose %r: refreshing the catalogue", purpose)
                threading.Thread(target=self._refresh_quietly, daemon=True).start()
                return unavailable(subject, purpose, datetime.now(UTC))
            entries = self._state.get(subject, _EMPTY)
            entry = entries.get(purpose)
            changes = self._changes.get(purpose, ())
            sig = signals or Signals()
            now = datetime.fromtimestamp(now_wall, UTC)
            decision = decide(
                subject,
                definition,
                entry,
                now=now,
                regime=regime_for(
                    sig.jurisdiction or infer_jurisdiction(entry, entries), self.default_regime
                ),
                changes=changes,
                signals=sig,
            )
            if signals is None:
                deadline = decision_deadline(decision, changes, now, _MAX_AGE).timestamp()
                answers = self._answers.get(subject)
                if answers is None:
                    answers = self._answers[subject] = {}
                answers[purpose] = (decision, min(deadline, self._fresh_until))
            return decision

    def _refresh_quietly(self) -> None:
        try:
            self.refresh_catalog()
        except Exception as exc:
            log.warning("catalogue refresh failed: %s", exc)

    def _from_server(
        self,
        subject: str,
        purpose: str,
        token: int | None,
        signals: Signals | None,
        why: str,
    ) -> Decision:
        if not self.ask_server:
            log.info("replica cannot answer (%s): unavailable", why)
            return unavailable(subject, purpose, datetime.now(UTC))
        sig = signals or Signals()
        try:
            return self.client.check(
                subject,
                purpose,
                min_token=token,
                jurisdiction=sig.jurisdiction,
                gpc=sig.gpc,
            )
        except ConsentryError:  # the client was built with raise_errors=True
            return unavailable(subject, purpose, datetime.now(UTC))


__all__ = ["Replica", "entry_from_dict", "notice_from_dict", "purpose_from_dict"]
