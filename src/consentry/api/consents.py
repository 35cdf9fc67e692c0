"""Recording consent, and reading a subject's state and history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from consentry.api.deps import ServicesDep, needs
from consentry.api.ledger import history_with_proofs
from consentry.api.mappings import get_collection
from consentry.domain.errors import ValidationError
from consentry.domain.events import format_time
from consentry.domain.inputs import check_subject, check_text, parse_timestamp
from consentry.keys import Scope, may_read_evidence
from consentry.recording.schema import ConsentBody
from consentry.recording.signals_in import read_signal
from consentry.serialize import decision_to_dict, event_to_dict
from consentry.signals.gpc import sec_gpc_opt_out
from consentry.storage.base import ApiKey

router = APIRouter(prefix="/v1", tags=["consents"])

MAX_IDEMPOTENCY_KEY = 200


@router.post(
    "/consents",
    status_code=201,
    summary="Record one subject's decisions on one or more purposes",
    description="Atomic: every event of the request is committed, or none. Retrying with the"
    " same event ids, or the same Idempotency-Key header, writes nothing twice and returns the"
    " first answer. The token is the log position to pass as min_token to read your write."
    " Instead of events, a `tc_string` (TCF v2.2/2.3) or `gpp_string` may be sent: the events it"
    " implies for the tenant's mapped purposes (PUT /v1/mappings) are recorded, with the string"
    " as evidence and source tcf or gpp.",
)
def record_consents(
    body: ConsentBody,
    request: Request,
    response: Response,
    services: ServicesDep,
    key: Annotated[ApiKey, Depends(needs(Scope.RECORD))],
    idempotency_key: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
        raise ValidationError(f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} characters")
    signal: dict[str, Any] | None = None
    if body.tc_string is not None or body.gpp_string is not None:
        consent, implied = read_signal(
            body,
            tenant=key.tenant,
            collection=get_collection(request),
            catalog=services.catalog,
            store=services.store,
        )
        signal = implied.report()  # which sections were read, and those that could not be
    else:
        consent = body.to_request()
    check_text("Idempotency-Key", idempotency_key or "")
    result = services.recorder.record(key.tenant, consent, idempotency_key=idempotency_key)
    token = result.token
    if sec_gpc_opt_out(request.headers.getlist("sec-gpc")):  # once per person (decisions/gpc.py)
        gpc = services.gpc.observe(key.tenant, consent.subject, jurisdiction=consent.jurisdiction)
        if gpc is not None:  # read-your-writes covers them too (invariant 7)
            token = max(token, gpc.token)
    metrics = request.app.state.metrics
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    else:
        for e in result.events:
            metrics.events_recorded.labels(e.action.value).inc()
        metrics.log_head.set(token)
    return {
        "events": [
            {
                "event_id": str(e.event_id),
                "position": e.position,
                "subject_version": e.subject_version,
                "purpose": e.purpose,
                "action": e.action.value,
                "recorded_at": format_time(e.recorded_at),
                # The ledger's signed promise of inclusion (docs/ledger.md, Receipts).
                "receipt": services.ledger.receipt(e).to_json_dict(),
            }
            for e in result.events
        ],
        "token": str(token),
        **({"signal": signal} if signal is not None else {}),
    }


def _time_param(name: str, value: str | None) -> datetime | None:
    """RFC 3339 only; the range (1970 to now + skew) is the decision service's to check."""
    return None if value is None else parse_timestamp(name, value)


@router.get(
    "/subjects/{subject}/consents",
    summary="State per purpose, now or as of a past moment",
    description="as_of filters by legal time (occurred_at); known_at also by when we knew it"
    " (recorded_at). Each purpose carries its decision and the event behind it.",
)
def subject_consents(
    subject: str,
    services: ServicesDep,
    key: Annotated[ApiKey, Depends(needs(Scope.STATE_READ))],
    as_of: Annotated[str | None, Query(description="RFC 3339 time")] = None,
    known_at: Annotated[str | None, Query(description="RFC 3339 time")] = None,
    jurisdiction: Annotated[str | None, Query(max_length=8)] = None,
) -> dict[str, Any]:
    check_subject(subject)
    as_of_t = _time_param("as_of", as_of)
    known_at_t = _time_param("known_at", known_at)
    states = services.decisions.state_as_of(
        key.tenant, subject, as_of=as_of_t, known_at=known_at_t, jurisdiction=jurisdiction
    )
    shown = may_read_evidence(key)  # a collector reads state, not the evidence of history
    return {
        "subject": subject,
        "as_of": format_time(as_of_t) if as_of_t else None,
        "known_at": format_time(known_at_t) if known_at_t else None,
        "purposes": [
            {
                **decision_to_dict(s.decision),
                "event": event_to_dict(s.event, evidence=shown) if s.event else None,
            }
            for s in states
        ],
    }


@router.get(
    "/subjects/{subject}/history",
    summary="Every event of a subject, oldest first (by legal time, then position)",
)
def subject_history(
    subject: str,
    services: ServicesDep,
    key: Annotated[ApiKey, Depends(needs(Scope.HISTORY_READ))],
    proofs: Annotated[
        bool, Query(description="Add each event's inclusion proof and the signed checkpoint.")
    ] = False,
) -> dict[str, Any]:
    check_subject(subject)
    events = sorted(services.store.subject_history(key.tenant, subject), key=lambda e: e.sort_key)
    if proofs:  # the verifiable ledger (api/ledger.py)
        return {"subject": subject, **history_with_proofs(services, key.tenant, events)}
    return {"subject": subject, "events": [e.to_dict() for e in events]}
