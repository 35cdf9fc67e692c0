"""The banner: its script, its settings, and its public, tenant-scoped collection endpoints.

- GET  /banner.js                      the static script (ui/static/banner.js), compressed.
- PUT  /v1/banner, GET /v1/banner      the tenant's banner settings (API key, catalog scopes).
- GET  /v1/banner/{site}/config        public, cacheable: texts, purposes, defaults, keys.
- POST /v1/banner/{site}/consent       public: records the choice of *this browser's* subject.

The collection endpoint needs no API key, so it is built to be harmless in a stranger's hands:
the subject is never taken from the request body. It is the one named by the HttpOnly session
cookie the server signed (Ed25519) for this tenant, or a new random one; so a caller can only
record choices for the browser it is, and can read nothing but the state it just set. Browsers
only send it cross-origin from the tenant's `allowed_origins` (CORS with credentials, JSON body,
so a preflight is needed; a request whose Origin is not allowed is refused outright: no CSRF).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from consentry.api.assets import asset_response
from consentry.api.client_address import client_address
from consentry.api.deps import ServicesDep, needs
from consentry.api.errors import error_response
from consentry.api.mappings import CollectionDep
from consentry.config import Settings
from consentry.domain.errors import ValidationError
from consentry.domain.events import Source, format_time
from consentry.domain.regimes import regime_for
from consentry.keys import Scope
from consentry.services import Services
from consentry.signals.gpc import sec_gpc_opt_out
from consentry.storage.base import ApiKey
from consentry.storage.collection import CollectionStore, SettingsKind
from consentry.tokens import SESSION, TokenError, verify_token
from consentry.ui import banner as ui

router = APIRouter(tags=["collection"])

CONFIG_MAX_AGE = 300
SCRIPT_MAX_AGE = 3600
SITE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


# --------------------------------------------------------------------------- the script


@router.get("/banner.js", include_in_schema=False)
def get_banner_script(request: Request) -> Response:
    """Compressed, with validators (api/assets.py); any site may load it."""
    return asset_response(
        request, "banner.js", max_age=SCRIPT_MAX_AGE, headers={"Access-Control-Allow-Origin": "*"}
    )


# --------------------------------------------------------------------------- settings (API key)


@router.put(
    "/v1/banner",
    summary="Enable and configure the tenant's banner (a new version)",
    description="Until this is set, the public banner endpoints of the tenant answer 404. The"
    " site id the banner script names (data-site) is the tenant's name.",
)
def put_banner(
    body: ui.BannerSettings,
    services: ServicesDep,
    collection: CollectionDep,
    key: Annotated[ApiKey, Depends(needs(Scope.CATALOG_WRITE))],
) -> dict[str, Any]:
    if body.purposes is not None:
        purposes = services.catalog.purposes(key.tenant)
        unknown = [p for p in body.purposes if p not in purposes]
        if unknown:
            raise ValidationError(f"unknown purposes: {', '.join(unknown)}")
    doc = collection.put(key.tenant, SettingsKind.BANNER, body.model_dump(mode="json"))
    return {"version": doc.version, "created_at": format_time(doc.created_at), **doc.body}


@router.get("/v1/banner", summary="The tenant's banner settings")
def get_banner(
    collection: CollectionDep,
    key: Annotated[ApiKey, Depends(needs(Scope.CATALOG_READ))],
) -> dict[str, Any]:
    doc = collection.latest(key.tenant, SettingsKind.BANNER)
    if doc is None:
        return {"version": 0, "enabled": False}
    return {"version": doc.version, "created_at": format_time(doc.created_at), **doc.body}


# --------------------------------------------------------------------------- public endpoints


def api_base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def request_jurisdiction(request: Request, services: Services) -> str | None:
    header = services.settings.jurisdiction_header
    return request.headers.get(header) if header else None


def client_ip(request: Request) -> str | None:
    """The client's address as evidence (the recorder truncates it per the evidence policy);
    X-Forwarded-For only from CONSENTRY_TRUSTED_PROXIES (api/client_address.py)."""
    settings: Settings = request.app.state.settings
    address = client_address(request.scope, settings.trusted_proxies)
    return str(address) if address is not None else None


def request_gpc(request: Request, flag: str | bool | None = None) -> bool:
    if flag is True or flag == "1":
        return True
    return sec_gpc_opt_out(request.headers.getlist("sec-gpc"))


def _own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def origin_allowed(request: Request, site: ui.Site) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser's cross-origin request: no ambient credentials to abuse
    return origin == _own_origin(request) or origin in site.settings.allowed_origins


def _cors(request: Request, site: ui.Site, response: Response) -> None:
    origin = request.headers.get("origin")
    response.headers["Vary"] = "Origin"
    if origin and origin_allowed(request, site):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"


def _site(services: Services, collection: CollectionStore, site: str) -> ui.Site:
    return ui.load_site(services, collection, site)


@router.get(
    "/v1/banner/{site}/config",
    tags=["banner"],
    summary="Public: the banner's texts, purposes, defaults and token key (cacheable)",
)
def banner_config(
    site: Annotated[str, Path(pattern=SITE_PATTERN)],
    request: Request,
    services: ServicesDep,
    collection: CollectionDep,
    gpc: Annotated[str | None, Query(max_length=1)] = None,
    j: Annotated[str | None, Query(max_length=8)] = None,
) -> JSONResponse:
    loaded = _site(services, collection, site)
    jurisdiction = ui.resolve_jurisdiction(request_jurisdiction(request, services), j, loaded)
    body = ui.public_config(
        services,
        loaded,
        jurisdiction=jurisdiction,
        gpc=request_gpc(request, gpc),
        api_base=api_base(request),
    )
    header = services.settings.jurisdiction_header
    vary = ", ".join(v for v in ("Sec-GPC", header) if v)
    return JSONResponse(
        body,
        headers={
            "Cache-Control": f"public, max-age={CONFIG_MAX_AGE}",
            "Vary": vary,
            "Access-Control-Allow-Origin": "*",
        },
    )


class ChoiceBody(BaseModel):
    """What the banner sends: a yes/no per purpose it offered (missing = nothing recorded)."""

    model_config = ConfigDict(extra="forbid")

    choices: dict[Annotated[StrictStr, Field(max_length=64)], StrictBool] = Field(max_length=200)
    gpc: StrictBool = False
    jurisdiction: Annotated[StrictStr, Field(max_length=8)] | None = None
    config_version: Annotated[StrictStr, Field(max_length=64)] | None = None


@router.options("/v1/banner/{site}/consent", include_in_schema=False)
def banner_consent_preflight(
    site: str, request: Request, services: ServicesDep, collection: CollectionDep
) -> Response:
    loaded = _site(services, collection, site)
    if not origin_allowed(request, loaded):
        return Response(status_code=403)
    response = Response(status_code=204)
    _cors(request, loaded, response)
    response.headers["Access-Control-Allow-Methods"] = "POST"
    response.headers["Access-Control-Allow-Headers"] = "content-type"
    response.headers["Access-Control-Max-Age"] = "600"
    return response


def session_subject(request: Request, services: Services, tenant: str) -> str | None:
    """The subject of this browser's signed session cookie for `tenant`, if valid."""
    token = request.cookies.get(ui.SESSION_COOKIE)
    if not token:
        return None
    try:
        verified = verify_token(
            token, services.keyring.verifiers(tenant), kind=SESSION, tenant=tenant
        )
    except TokenError:
        return None
    return verified.subject


def set_cookies(
    request: Request,
    response: Response,
    site: ui.Site,
    *,
    consent_token: str,
    session_token: str | None,
) -> None:
    settings = site.settings
    max_age = settings.cookie_days * 86_400
    secure = request.url.scheme == "https"
    common: dict[str, Any] = {
        "max_age": max_age,
        "path": "/",
        "secure": secure,
        "samesite": "lax",
    }
    if settings.cookie_domain:
        common["domain"] = settings.cookie_domain
    # Page scripts read the choice (no subject in it); the identity stays HttpOnly.
    response.set_cookie(ui.CONSENT_COOKIE, consent_token, httponly=False, **common)
    if session_token is not None:
        response.set_cookie(ui.SESSION_COOKIE, session_token, httponly=True, **common)


@router.post(
    "/v1/banner/{site}/consent",
    tags=["banner"],
    summary="Public: record this browser's choice and set its consent cookie",
)
def banner_consent(
    site: Annotated[str, Path(pattern=SITE_PATTERN)],
    body: ChoiceBody,
    request: Request,
    services: ServicesDep,
    collection: CollectionDep,
) -> Response:
    loaded = _site(services, collection, site)
    if not origin_allowed(request, loaded):
        return error_response(403, "forbidden", "this origin may not record choices for this site")
    content_type = request.headers.get("content-type", "")
    if not content_type.split(";")[0].strip().lower() == "application/json":
        raise ValidationError("send the choice as application/json")
    subject = session_subject(request, services, loaded.tenant)
    new_session = subject is None
    if subject is None:
        subject = ui.new_subject()
    jurisdiction = ui.resolve_jurisdiction(
        request_jurisdiction(request, services), body.jurisdiction, loaded
    )
    regime = regime_for(jurisdiction, services.settings.default_regime)
    gpc = request_gpc(request, body.gpc)
    recorded = ui.record_choices(
        services,
        loaded,
        subject,
        body.choices,
        source=Source.BANNER,
        regime=regime,
        jurisdiction=jurisdiction,
        gpc=gpc,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )
    permitted = ui.subject_permitted(services, loaded, subject, jurisdiction=jurisdiction)
    state = ui.build_state(
        loaded,
        permitted,
        regime=regime,
        jurisdiction=jurisdiction,
        gpc=gpc,
        now=datetime.now(UTC),
    )
    position = recorded.position
    claims = state.claims(loaded, position=position)
    days = loaded.settings.cookie_days
    token = ui.consent_token(services, loaded, claims, days)
    response = JSONResponse(
        {
            "consent": claims,
            "token": token,
            "position": str(position) if position is not None else None,
            "events": [
                {"purpose": e.purpose, "action": e.action.value, "source": e.evidence.source.value}
                for e in recorded.events
            ],
        },
        headers={"Cache-Control": "no-store"},
    )
    set_cookies(
        request,
        response,
        loaded,
        consent_token=token,
        # Re-issued on every choice, so an active visitor's session does not lapse.
        session_token=ui.session_token(services, loaded.tenant, subject, days),
    )
    _cors(request, loaded, response)
    if new_session:
        response.headers["X-Consentry-New-Subject"] = "1"
    return response
