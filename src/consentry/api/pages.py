"""Pages for people: the preference center (/preferences) and the demo site (/demo).

The preference center is server-rendered and works without JavaScript. A person reaches it with
a signed link (`?t=`, issued by POST /v1/subjects/{subject}/preference-link; exchanged at once
for an HttpOnly cookie scoped to /preferences, so the token leaves the address bar) or with the
banner's session cookie. The form is protected by SameSite=Lax cookies, an Origin check and a
token bound to the cookie.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from consentry.api.banner import (
    api_base,
    client_ip,
    request_gpc,
    request_jurisdiction,
    session_subject,
    set_cookies,
)
from consentry.api.deps import ServicesDep, needs
from consentry.api.mappings import CollectionDep, get_collection
from consentry.bootstrap import DEFAULT_TENANT
from consentry.domain.errors import NotFoundError, ValidationError
from consentry.domain.events import Source
from consentry.domain.inputs import check_subject
from consentry.domain.regimes import Regime
from consentry.keys import Scope
from consentry.services import Services
from consentry.storage.base import ApiKey
from consentry.storage.collection import CollectionStore
from consentry.tokens import PREFERENCES, SESSION, TokenError, b64url_decode, verify_token
from consentry.ui import banner as ui
from consentry.ui import pages

router = APIRouter(tags=["pages"])

PREFERENCES_COOKIE = "consentry_pref"
PREFERENCES_SESSION_SECONDS = 3600
MAX_FORM_BYTES = 65_536
_JURISDICTION = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,3})?$")

_HTML_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # no-referrer would send Origin: null
    "X-Content-Type-Options": "nosniff",
}


@dataclass(frozen=True, slots=True)
class Visitor:
    tenant: str
    subject: str
    cookie: str  # the cookie value the form's CSRF token is bound to
    banner_session: bool  # identified by the banner's own session cookie


def _unverified_tenant(token: str) -> str | None:
    try:
        claims = json.loads(b64url_decode(token.split(".")[1]))
    except (ValueError, IndexError, TokenError):
        return None
    tenant = claims.get("tnt") if isinstance(claims, dict) else None
    return tenant if isinstance(tenant, str) else None


def _verify(services: Services, token: str, kind: str) -> tuple[str, str] | None:
    """(tenant, subject) of a valid token of `kind`; the tenant must exist (keys are never
    created for a name a stranger made up)."""
    tenant = _unverified_tenant(token)
    if not tenant or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", tenant):
        return None
    if not services.store.tenant_exists(tenant):
        return None
    try:
        verified = verify_token(token, services.keyring.verifiers(tenant), kind=kind, tenant=tenant)
    except TokenError:
        return None
    if not verified.subject:
        return None
    return tenant, verified.subject


def _visitor(request: Request, services: Services) -> Visitor | None:
    link = request.cookies.get(PREFERENCES_COOKIE)
    if link:
        found = _verify(services, link, PREFERENCES)
        if found:
            return Visitor(found[0], found[1], link, False)
    session = request.cookies.get(ui.SESSION_COOKIE)
    if session:
        found = _verify(services, session, SESSION)
        if found:
            return Visitor(found[0], found[1], session, True)
    return None


def _jurisdiction(request: Request, services: Services) -> str | None:
    value = request_jurisdiction(request, services)
    return value if value and _JURISDICTION.match(value) else None


def _page(html: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(html, status, headers=_HTML_HEADERS)


# The pages are for people (HTML, errors as pages), not API operations: kept out of the OpenAPI.
@router.get("/preferences", response_class=HTMLResponse, include_in_schema=False)
def preferences(
    request: Request,
    services: ServicesDep,
    t: Annotated[str | None, Query(max_length=4096, description="a preference link token")] = None,
    saved: Annotated[str | None, Query(max_length=8)] = None,
) -> Response:
    if t is not None:
        if _verify(services, t, PREFERENCES) is None:
            return _page(
                pages.render(
                    "preferences_unknown.html",
                    message="This link is invalid or has expired. Ask for a new one.",
                ),
                403,
            )
        response = RedirectResponse("/preferences", status_code=303, headers=_HTML_HEADERS)
        response.set_cookie(
            PREFERENCES_COOKIE,
            t,
            max_age=PREFERENCES_SESSION_SECONDS,
            path="/preferences",
            httponly=True,
            secure=request.url.scheme == "https",
            samesite="lax",
        )
        return response
    visitor = _visitor(request, services)
    if visitor is None:
        return _page(
            pages.render(
                "preferences_unknown.html", message="We do not know whose choices to show you."
            ),
            401,
        )
    jurisdiction = _jurisdiction(request, services)
    views, _ = pages.purpose_views(services, visitor.tenant, visitor.subject, jurisdiction)
    events = services.store.subject_history(visitor.tenant, visitor.subject)
    message = {"1": "Your choices were saved.", "0": "Nothing changed."}.get(saved or "")
    html = pages.render(
        "preferences.html",
        purposes=views,
        history=pages.history_rows(events, services.catalog.purposes(visitor.tenant)),
        subject=visitor.subject,
        csrf=pages.csrf_token(visitor.cookie),
        action="/preferences",
        saved=message,
        error=None,
        gpc=request_gpc(request),
    )
    return _page(html)


@router.post("/preferences", response_class=HTMLResponse, include_in_schema=False)
async def save_preferences(request: Request) -> Response:
    services: Services = request.app.state.services
    collection = get_collection(request)
    raw = await request.body()
    if len(raw) > MAX_FORM_BYTES:
        raise ValidationError("the form is too large")
    form = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    return await run_in_threadpool(_save, request, services, collection, form)


def _save(
    request: Request, services: Services, collection: CollectionStore, form: dict[str, str]
) -> Response:
    visitor = _visitor(request, services)
    if visitor is None:
        return _page(
            pages.render(
                "preferences_unknown.html", message="We do not know whose choices to change."
            ),
            401,
        )
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.url.netloc}"
    if (origin is not None and origin != own) or not pages.csrf_ok(
        visitor.cookie, form.get("csrf")
    ):
        return _page(
            pages.render(
                "preferences_unknown.html",
                message="This form was not sent from the preference center. Open it again.",
            ),
            403,
        )
    site = ui.load_site(services, collection, visitor.tenant, for_banner=False)
    everything = form.get("all", "")
    choices: dict[str, bool] = {}
    for purpose in site.choosable:
        if everything in ("allow", "deny"):
            choices[purpose.id] = everything == "allow"
            continue
        value = form.get(f"choice.{purpose.id}")
        if value in ("allow", "deny"):
            choices[purpose.id] = value == "allow"
    jurisdiction = _jurisdiction(request, services)
    _, regime = pages.purpose_views(services, visitor.tenant, visitor.subject, jurisdiction)
    recorded = ui.record_choices(
        services,
        site,
        visitor.subject,
        choices,
        source=Source.PREFERENCE_CENTER,
        regime=regime,
        jurisdiction=jurisdiction,
        gpc=False,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        only_changes=True,
    )
    response = RedirectResponse(
        f"/preferences?saved={1 if recorded.events else 0}", status_code=303, headers=_HTML_HEADERS
    )
    _refresh_banner_cookie(request, response, services, collection, visitor, regime, jurisdiction)
    return response


def _refresh_banner_cookie(
    request: Request,
    response: Response,
    services: Services,
    collection: CollectionStore,
    visitor: Visitor,
    regime: Regime,
    jurisdiction: str | None,
) -> None:
    """After a change, this browser's consent cookie must say the same as the log."""
    if visitor.banner_session:
        subject = visitor.subject
    else:
        subject = session_subject(request, services, visitor.tenant) or ""
        if subject != visitor.subject:
            return
    try:
        site = ui.load_site(services, collection, visitor.tenant)
    except NotFoundError:
        return
    permitted = ui.subject_permitted(services, site, subject, jurisdiction=jurisdiction)
    gpc = request_gpc(request)
    state = ui.build_state(
        site, permitted, regime=regime, jurisdiction=jurisdiction, gpc=gpc, now=datetime.now(UTC)
    )
    head = services.store.head()
    token = ui.consent_token(
        services, site, state.claims(site, position=head), site.settings.cookie_days
    )
    set_cookies(request, response, site, consent_token=token, session_token=None)


@router.post(
    "/v1/subjects/{subject}/preference-link",
    tags=["pages"],
    summary="A signed link that opens the subject's preference center",
    description="Send it to the person (e.g. in an email footer). Whoever holds it can see and"
    " change that subject's choices until it expires.",
)
def preference_link(
    subject: str,
    request: Request,
    services: ServicesDep,
    key: Annotated[ApiKey, Depends(needs(Scope.RECORD))],
    hours: Annotated[int, Body(embed=True, ge=1, le=24 * 30)] = 72,
) -> dict[str, Any]:
    check_subject(subject)
    token = ui.preference_link_token(services, key.tenant, subject, hours)
    return {
        "url": f"{api_base(request)}/preferences?t={token}",
        "token": token,
        "expires_in_hours": hours,
    }


@router.get("/demo", response_class=HTMLResponse, include_in_schema=False)
def demo(
    request: Request,
    services: ServicesDep,
    collection: CollectionDep,
    jurisdiction: Annotated[str | None, Query(max_length=8)] = None,
) -> Response:
    if not services.settings.demo:
        raise NotFoundError("the demo is switched off (CONSENTRY_DEMO=false)")
    pages.ensure_demo(services, collection, DEFAULT_TENANT)
    if jurisdiction is not None and not _JURISDICTION.match(jurisdiction):
        jurisdiction = None
    html = pages.render("demo.html", site=DEFAULT_TENANT, jurisdiction=jurisdiction)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})
