"""Global Privacy Control: turn a `Sec-GPC: 1` request about a known person into a recorded opt-out.

The header alone already makes decisions say `gpc_opt_out` (decide() reads Signals.gpc). But the
law (CPRA regs § 7025, Colorado's universal opt-out) treats the signal as the person's opt-out of
sale, sharing and targeted advertising, which must hold when the same person comes back without
it. So when a request carries the signal and names its subject, we record ONE `opted_out` event,
source `gpc`, for every opt-out-category purpose, in an opt-out regime, once:

- nothing is recorded where the purpose is already denied (opted out, refused, withdrawn);
- an explicit opt-in recorded AFTER an earlier GPC opt-out is honoured, not overwritten on each
  request: § 7025(c)(3) lets a business ask the person to consent despite the signal and rely on
  the answer;
- event ids are derived from (tenant, subject, purpose, the state they replace), so two requests
  racing to record the same opt-out write it once (the second is an idempotent replay).

In an opt-in regime consent is already required, so nothing is recorded there.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

from consentry.decisions.local import infer_jurisdiction
from consentry.decisions.service import DecisionService
from consentry.domain.decide import StateEntry
from consentry.domain.errors import ConflictError
from consentry.domain.events import Action, Source
from consentry.domain.regimes import Regime
from consentry.recording.service import ConsentRequest, EventRequest, Recorder
from consentry.storage.base import AppendResult
from consentry.storage.catalog import Catalog

log = logging.getLogger("consentry.gpc")

RAW_SIGNAL = "Sec-GPC: 1"
_NAMESPACE = uuid.UUID("6f0d3c6e-5f55-4a8e-9a43-7f0bb4f3c1a1")
_DENIED = frozenset({Action.OPTED_OUT, Action.REFUSED, Action.WITHDRAWN})


@dataclass
class GpcRecorder:
    recorder: Recorder
    catalog: Catalog
    decisions: DecisionService
    _honoured: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def observe(
        self,
        tenant: str,
        subject: str,
        *,
        jurisdiction: str | None = None,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> AppendResult | None:
        """Record the GPC opt-out of `subject` where it is due; None when nothing was due."""
        purposes = [
            p
            for p in self.catalog.purposes(tenant).values()
            if p.opt_out_category is not None and not p.required
        ]
        if not purposes:
            return None
        reader = self.decisions.active_reader
        head = reader.sync()
        entries = reader.views(tenant, [subject], head)[subject].entries
        where = jurisdiction or infer_jurisdiction(None, entries)
        if self.decisions.regime(where) is not Regime.OPT_OUT:
            return None
        due = [p for p in purposes if self._due(tenant, subject, p.id, entries.get(p.id))]
        if not due:
            return None
        request = ConsentRequest(
            subject=subject,
            source=Source.GPC,
            events=[
                EventRequest(
                    p.id, Action.OPTED_OUT, _event_id(tenant, subject, p.id, entries.get(p.id))
                )
                for p in due
            ],
            jurisdiction=where,
            ip=ip,
            user_agent=user_agent,
            raw_signal=RAW_SIGNAL,
        )
        try:
            return self.recorder.record(tenant, request)
        except ConflictError:
            # Another request recorded an overlapping set first: the opt-out holds either way.
            log.info("a GPC opt-out in %r was recorded concurrently", tenant)  # no subject: PII
            return None

    def _due(self, tenant: str, subject: str, purpose: str, entry: StateEntry | None) -> bool:
        if entry is None:
            return True
        if entry.action in _DENIED:
            return False
        # given / opted_in: honour it if the person chose it after an earlier GPC opt-out.
        key = (tenant, subject, purpose)
        if self._honoured.get(key) == entry.position:
            return False
        history = self.recorder.store.subject_history(tenant, subject)
        after_gpc = any(
            e.purpose == purpose
            and e.evidence.source is Source.GPC
            and e.action is Action.OPTED_OUT
            and e.sort_key < (entry.occurred_at, entry.position)
            for e in history
        )
        if after_gpc:
            if len(self._honoured) > 100_000:
                self._honoured.clear()
            self._honoured[key] = entry.position
        return not after_gpc


def _event_id(tenant: str, subject: str, purpose: str, entry: StateEntry | None) -> uuid.UUID:
    replaces = entry.position if entry is not None else 0
    return uuid.uuid5(_NAMESPACE, f"{len(tenant)}:{tenant}:{purpose}:{replaces}:{subject}")
