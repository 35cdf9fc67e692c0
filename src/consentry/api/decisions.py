"""The decision endpoints: may we process this subject's data for this purpose, now?"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from consentry.api.deps import ServicesDep, needs
from consentry.decisions.service import parse_token
from consentry.domain.decide import Signals
from consentry.keys import Scope
from consentry.recording.schema import DecisionsBody
from consentry.serialize import decision_to_dict
from consentry.storage.base import ApiKey

router = APIRouter(prefix="/v1", tags=["decisions"])


def _signals(request: Request, jurisdiction: str | None) -> Signals:
    return Signals(gpc=request.headers.get("sec-gpc") == "1", jurisdiction=jurisdiction)


@router.get("/decisions", summary="One decision, with its reason and the event behind it")
def get_decision(
    request: Request,
    services: ServicesDep,
    key: Annotated[ApiKey, Depends(needs(Scope.DECIDE))],
    subject: Annotated[str, Query(min_length=1, max_length=256)],
    purpose: Annotated[str, Query(min_length=1, max_length=64)],
    min_token: Annotated[str | None, Query(description="a token from a write")] = None,
    jurisdiction: Annotated[str | None, Query(max_length=8)] = None,
) -> dict[str, Any]:
    decision = services.decisions.check(
        key.tenant,
        subject,
        purpose,
        min_token=parse_token(min_token),
        signals=_signals(request, jurisdiction),
    )
    request.app.state.metrics.decisions.labels(decision.reason.value).inc()
    return decision_to_dict(decision)


@router.post("/decisions", summary="Many decisions in one request")
def post_decisions(
    body: DecisionsBody,
    request: Request,
    services: ServicesDep,
    key: Annotated[ApiKey, Depends(needs(Scope.DECIDE))],
) -> dict[str, Any]:
    decisions = services.decisions.check_many(
        key.tenant,
        [(c.subject, c.purpose) for c in body.checks],
        min_token=parse_token(body.min_token),
        signals=_signals(request, body.jurisdiction),
    )
    counter = request.app.state.metrics.decisions
    for d in decisions:
        counter.labels(d.reason.value).inc()
    return {"decisions": [decision_to_dict(d) for d in decisions]}
