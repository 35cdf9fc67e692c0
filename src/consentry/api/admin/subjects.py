"""Subjects: a person looked up by identifier, their state per purpose with the reason behind
each decision (the decision service), and their full history with each event's inclusion proof
(the ledger service), downloadable as one JSON file an auditor can verify offline."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query, Request, Response

from consentry.api.admin.console import NAV, NavItem, admin_router, has_route, render
from consentry.api.admin.session import Viewer
from consentry.api.ledger import history_with_proofs
from consentry.domain.decide import Reason
from consentry.domain.errors import ValidationError
from consentry.domain.inputs import check_subject
from consentry.services import Services

router = admin_router()
NAV.add(NavItem("subjects", "Subjects", "/admin/subjects", "People", 20))

REASON_TEXT: Mapping[Reason, str] = {
    Reason.GRANTED: "consent given",
    Reason.NOT_GIVEN: "no decision recorded: consent is required",
    Reason.REFUSED: "refused",
    Reason.WITHDRAWN: "consent withdrawn",
    Reason.EXPIRED: "consent expired (the purpose's lifetime passed)",
    Reason.RECONSENT_REQUIRED: "the notice changed materially: consent must be given again",
    Reason.OBJECTED: "objected to legitimate interest",
    Reason.OPTED_OUT: "opted out",
    Reason.GPC_OPT_OUT: "opted out by a Global Privacy Control signal",
    Reason.NOT_OPTED_OUT: "allowed until the person opts out (opt-out regime)",
    Reason.LEGITIMATE_INTEREST: "legitimate interest, no objection",
    Reason.CONTRACT: "needed for a contract",
    Reason.LEGAL_OBLIGATION: "required by law",
    Reason.REQUIRED: "strictly necessary",
    Reason.GUARDIAN_REQUIRED: "a parent or guardian must agree",
    Reason.UNAVAILABLE: "could not be decided now",
}


@dataclass(frozen=True, slots=True)
class SubjectLink:
    """A place on the subject page for an action built elsewhere (the DSAR export, the proof
    bundle, erasure, lifecycle events): shown as a link when the console route `path` exists,
    else as `planned` text. `path` is a template with {subject}."""

    label: str
    path: str
    planned: str
    danger: bool = False


SUBJECT_LINKS: list[SubjectLink] = [
    SubjectLink("Export (DSAR)", "/admin/subjects/export", "the DSAR export (issue 14)"),
    SubjectLink("Proof bundle", "/admin/subjects/proof-bundle", "the proof bundle (issue 14)"),
    SubjectLink("Erase", "/admin/subjects/erase", "erasure (issue 13)", danger=True),
    SubjectLink(
        "Record a lifecycle event", "/admin/subjects/lifecycle", "lifecycle events (issue 13)"
    ),
]


def _subject(value: str | None) -> str | None:
    """The identifier typed (surrounding spaces dropped), checked by the subject rule."""
    if value is None or not value.strip():
        return None
    return check_subject(value.strip())


@router.get("/admin/subjects")
def subjects(
    request: Request,
    who: Viewer,
    subject: Annotated[str | None, Query(max_length=300)] = None,
) -> Response:
    found = _subject(subject)
    context: dict[str, Any] = {"subject": found, "states": [], "history": None}
    if found is not None:
        services: Services = request.app.state.services
        context["states"] = services.decisions.state_as_of(who.tenant, found)
        events = sorted(services.store.subject_history(who.tenant, found), key=lambda e: e.sort_key)
        checkpoint, proofs = services.ledger.inclusions(who.tenant, events)
        context["history"] = [(e, proofs.get(str(e.event_id))) for e in events]
        context["checkpoint"] = checkpoint
        context["names"] = {p.id: p.name for p in services.catalog.purposes(who.tenant).values()}
    links = [(link, has_route(request, link.path)) for link in SUBJECT_LINKS]
    return render(
        request,
        who,
        "admin/subjects.html",
        title=f"Subject {found}" if found else "Subjects",
        reason_text=REASON_TEXT,
        links=links,
        **context,
    )


@router.get("/admin/subjects/history.json")
def history_download(
    request: Request,
    who: Viewer,
    subject: Annotated[str, Query(max_length=300)],
) -> Response:
    """The subject's history with an inclusion proof per event and the signed checkpoint: the
    same document as GET /v1/subjects/{subject}/history?proofs=true (docs/ledger.md)."""
    found = _subject(subject)
    if found is None:
        raise ValidationError("name the subject to download")
    services: Services = request.app.state.services
    events = sorted(services.store.subject_history(who.tenant, found), key=lambda e: e.sort_key)
    body = {"subject": found, **history_with_proofs(services, who.tenant, events)}
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", found)[:80]
    return Response(
        json.dumps(body, indent=2, ensure_ascii=False),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="history-{safe}.json"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
