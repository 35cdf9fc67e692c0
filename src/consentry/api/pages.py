"""Pages for people: the preference center (/preferences) and the demo site (/demo).

The preference center is server-rendered and works without JavaScript. A person reaches it with
the banner's session cookie, or with a signed link (`?t=`, issued by
POST /v1/subjects/{subject}/preference-link). The link opens a page with one button; pressing it
POSTs the token to /preferences/open, which takes it ONCE (its id is recorded as used) and sets
an HttpOnly cookie scoped to /preferences holding a one-hour session token instead. So a link
that leaked after it was opened (forwarded, in a proxy's log) opens nothing; and the mail
scanners that fetch every link of an email (a GET) do not use it up before its person clicks.
The form is protected by SameSite=Lax cookies, an Origin check and a token bound to the cookie.
"""

from __future__ import annotations

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
from consentry.api.security_headers import DEMO_POLICY
from consentry.domain.errors import NotFoundError, ValidationError
from consentry.domain.events import Source
from consentry.domain.inputs import check_subject
from consentry.domain.regimes import Regime
from consentry.keys import Scope
from consentry.services import Services
from consentry.storage.base import ApiKey
from consentry.storage.collection import CollectionStore
from consentry.storage.token_uses import TokenUses
from consentry.tokens import (
    PREFERENCES,
    PREFERENCES_SESSION,
    SESSION,
    TokenError,
    VerifiedToken,
    unverified_tenant,
    verify_token,
)
from consentry.ui import banner as ui
from consentry.ui import pages

router = APIRouter(tags=["pages"])

PREFERENCES_COOKIE = "consentry_pref"
PREFERENCES_SESSION_SECONDS = 3600
MAX_FORM_BYTES = 65_536
_JURISDICTION = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,3})?$")

MAX_TOKEN_ID = 64
# The security headers (CSP, frame-ancestors, ...) are added to every page by
# api/security_headers.py; a person's page is never stored by a cache.
_HTML_HEADERS = {"Cache-Control": "no-store"}


@dataclass(frozen=True, slots=True)
class Visitor:
    tenant: str
    subject: str
    cookie: str  # the cookie value the form's CSRF token is bound to
    banner_session: bool  # identified by the banner's own session cookie


def _verified(services: Services, token: str, kind: str) -> VerifiedToken | None:
    """A valid token of `kind` naming a subject; the tenant must exist (keys are never created
    for a name a stranger made up)."""
    tenant = unverified_tenant(token)
    if not tenant or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", tenant):
        return None
    if not services.store.tenant_exists(tenant):
        return None
    try:
        verified = verify_token(token, services.keyring.verifiers(tenant), kind=kind, tenant=tenant)
    except TokenError:
        return None
    return verified if verified.subject else None


def _link_id(verified: VerifiedToken) -> str | None:
    """The id a preference link is taken once by; links without one (older) are refused."""
    jti = verified.claims.get("jti")
    return jti if isinstance(jti, str) and 0 < len(jti) <= MAX_TOKEN_ID else None


def get_token_uses(request: Request) -> TokenUses:
    uses: TokenUses | None = getattr(request.app.state, "token_uses", None)
    if uses is None:
        uses = request.app.state.token_uses = TokenUses(request.app.state.services.store)
    return uses


def _visitor(request: Request, services: Services) -> Visitor | None:
    opened = request.cookies.get(PREFERENCES_COOKIE)
    if opened:
        found = _verified(services, opened, PREFERENCES_SESSION)
        if found and found.subject:
            return Visitor(found.tenant, found.subject, opened, False)
    session = request.cookies.get(ui.SESSION_COOKIE)
    if session:
        found = _verified(services, session, SESSION)
        if found and found.subject:
            return Visitor(found.tenant, found.subject, session, True)
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
        # Only shown: a GET (a mail scanner's too) does not use the link up; the button does.
        link = _verified(services, t, PREFERENCES)
        link_id = _link_id(link) if link else None
        if link is None or link_id is None:
            return _invalid_link()
        if get_token_uses(request).used(link.tenant, link_id):
            return _used_link()
        return _page(pages.render("preferences_open.html", token=t))
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


def _invalid_link() -> Response:
    message = "This link is invalid or has expired. Ask for a new one."
    return _page(pages.render("preferences_unknown.html", message=message), 403)


def _used_link() -> Response:
    message = "This link was already used: each link opens the page once. Ask for a new one."
    return _page(pages.render("preferences_unknown.html", message=message), 403)


def _foreign_form() -> Response:
    message = "This form was not sent from the preference center. Open it again."
    return _page(pages.render("preferences_unknown.html", message=message), 403)


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    return origin is None or origin == f"{request.url.scheme}://{request.url.netloc}"


async def _form(request: Request) -> dict[str, str]:
    raw = await request.body()
    if len(raw) > MAX_FORM_BYTES:
        raise ValidationError("the form is too large")
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


@router.post("/preferences/open", response_class=HTMLResponse, include_in_schema=False)
async def open_preferences(request: Request) -> Response:
    """Exchange a preference link for the preference center's cookie, once."""
    form = await _form(request)
    return await run_in_threadpool(_open, request, form.get("t", ""))


def _open(request: Request, token: str) -> Response:
    services: Services = request.app.state.services
    if not _same_origin(request):
        return _foreign_form()
    link = _verified(services, token, PREFERENCES)
    link_id = _link_id(link) if link else None
    if link is None or link_id is None or link.subject is None:
        return _invalid_link()
    if not get_token_uses(request).claim(link.tenant, link_id, link.expires_at):
        return _used_link()
    session = ui.preference_session_token(
        services, link.tenant, link.subject, PREFERENCES_SESSION_SECONDS
    )
    response = RedirectResponse("/preferences", status_code=303, headers=_HTML_HEADERS)
    response.set_cookie(
        PREFERENCES_COOKIE,
        session,
        max_age=PREFERENCES_SESSION_SECONDS,
        path="/preferences",
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="lax",
    )
    return response


@router.post("/preferences", response_class=HTMLResponse, include_in_schema=False)
async def save_preferences(request: Request) -> Response:
    services: Services = request.app.state.services
    collection = get_collection(request)
    form = await _form(request)
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
    if not _same_origin(request) or not pages.csrf_ok(visitor.cookie, form.get("csrf")):
        return _foreign_form()
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
        raise NotFoundError(
            "the demo is off: start the server with `consentry serve --demo`"
            " (or CONSENTRY_DEMO=true)"
        )
    pages.ensure_demo(services, collection, pages.DEMO_TENANT)
    if jurisdiction is not None and not _JURISDICTION.match(jurisdiction):
        jurisdiction = None
    html = pages.render("demo.html", site=pages.DEMO_TENANT, jurisdiction=jurisdiction)
    # The banner adds its stylesheet to the page it is on: the demo allows inline styles.
    return HTMLResponse(html, headers={**_HTML_HEADERS, "Content-Security-Policy": DEMO_POLICY})
