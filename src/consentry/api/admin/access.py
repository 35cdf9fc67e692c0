"""Access: the tenant's API keys (create, revoke, rotate) and the installation's tenants.

A new key is shown once, on the page that answers its creation (never stored in clear, never
put in a redirect or a cookie). Keys are an admin's business, as in the API (keys:manage);
tenants are created by an admin of the installation's own tenant (`default`), who receives the
new tenant's first admin key.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request, Response

from consentry.api.admin.console import (
    HTML_HEADERS,
    NAV,
    NavItem,
    admin_router,
    confirm,
    redirect,
    render,
)
from consentry.api.admin.session import Principal, Submission, submission, viewer
from consentry.api.deps import KeyCache
from consentry.domain.errors import NotFoundError, ValidationError
from consentry.domain.inputs import check_tenant_name
from consentry.keys import IssuedKey, create_key, revoke_key, rotate_key
from consentry.services import Services
from consentry.storage.base import ApiKey, Role
from consentry.storage.reports import Reports
from consentry.storage.sql import utcnow

router = admin_router()
NAV.add(NavItem("keys", "API keys", "/admin/keys", "Access", 40, role=Role.ADMIN))
NAV.add(NavItem("tenants", "Tenants", "/admin/tenants", "Access", 41, Role.ADMIN, operator=True))
for _order, (_name, _label, _what) in enumerate(
    (
        ("webhooks", "Webhooks", "webhooks that tell other systems of each change"),
        ("imports", "Imports", "imports of consent recorded elsewhere"),
        ("transparency", "Transparency report", "the public transparency report"),
    )
):
    NAV.add(NavItem(_name, _label, f"/admin/{_name}", "Integrations", 50 + _order, planned=_what))

ROLE_TEXT = {
    Role.ADMIN: "Admin: everything, including keys",
    Role.COLLECTOR: "Collector: record consent and check decisions (websites, apps)",
    Role.CHECKER: "Checker: check decisions only (services that process data)",
    Role.AUDITOR: "Auditor: read state, history and proofs; change nothing",
}

KeysViewer = Annotated[Principal, Depends(viewer(Role.ADMIN))]
KeysEditor = Annotated[Submission, Depends(submission(Role.ADMIN))]
Operator = Annotated[Principal, Depends(viewer(Role.ADMIN, operator=True))]
OperatorForm = Annotated[Submission, Depends(submission(Role.ADMIN, operator=True))]


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


GRACE_CHOICES = {
    "0": "None: the old key stops at once",
    "3600": "1 hour",
    "86400": "1 day",
    "604800": "7 days",
}


def _keys_page(
    request: Request, who: Principal, *, issued: IssuedKey | None = None, error: str | None = None
) -> Response:
    listed = sorted(
        _services(request).store.list_api_keys(who.tenant),
        key=lambda k: (k.revoked_at is not None, k.created_at),
    )
    return render(
        request,
        who,
        "admin/keys.html",
        title="API keys",
        keys=listed,
        roles=ROLE_TEXT,
        issued=issued,
        error=error,
        now=utcnow(),
        status=201 if issued else (422 if error else 200),
    )


@router.get("/admin/keys")
def keys_page(request: Request, who: KeysViewer) -> Response:
    return _keys_page(request, who)


@router.post("/admin/keys")
def create_api_key(request: Request, form: KeysEditor) -> Response:
    try:
        role = Role(form.get("role"))
    except ValueError:
        return _keys_page(request, form.who, error="Choose what the key may do.")
    label = form.get("label")
    if len(label) > 200:
        return _keys_page(request, form.who, error="The label is limited to 200 characters.")
    issued = create_key(_services(request).store, form.who.tenant, role, label)
    return _keys_page(request, form.who, issued=issued)


def _key(request: Request, who: Principal, key_id: str) -> ApiKey:
    for key in _services(request).store.list_api_keys(who.tenant):
        if key.key_id == key_id:
            return key
    raise NotFoundError(f"this tenant has no API key {key_id!r}")


@router.get("/admin/keys/{key_id}/revoke")
def confirm_revoke(request: Request, key_id: str, who: KeysViewer) -> Response:
    key = _key(request, who, key_id)
    consequences = [
        f"The {key.role.value} key {key.key_id}"
        + (f" ({key.label})" if key.label else "")
        + " stops working on every server within a second.",
        "Every system that uses it is refused from then on; give them a new key first.",
        "Console sessions opened with it end at once.",
        "This cannot be undone.",
    ]
    if key.key_id == who.key.key_id:
        consequences.append("It is the key you signed in with: you will be signed out.")
    return confirm(
        request,
        who,
        title=f"Revoke key {key.key_id}?",
        consequences=consequences,
        action=f"/admin/keys/{key.key_id}/revoke",
        button="Revoke this key",
        cancel="/admin/keys",
        danger=True,
    )


@router.post("/admin/keys/{key_id}/revoke")
def revoke(request: Request, key_id: str, form: KeysEditor) -> Response:
    key = _key(request, form.who, key_id)
    revoke_key(
        _services(request).store, form.who.tenant, key.key_id, revoked_by=form.who.key.key_id
    )
    _forget_cached_keys(request)
    if key.key_id == form.who.key.key_id:
        return Response(status_code=303, headers={**HTML_HEADERS, "Location": "/admin/sign-in"})
    return redirect(request, form.who, "/admin/keys", f"Key {key.key_id} is revoked.")


@router.get("/admin/keys/{key_id}/rotate")
def confirm_rotate(request: Request, key_id: str, who: KeysViewer) -> Response:
    key = _key(request, who, key_id)
    return confirm(
        request,
        who,
        title=f"Rotate key {key.key_id}?",
        consequences=[
            f"A new {key.role.value} key with the same label is created and shown to you once.",
            f"The key {key.key_id} keeps working during the grace period you choose, then stops"
            " on every server: give the new key to the systems that use it before then.",
        ],
        choices=("grace_seconds", "Grace period", GRACE_CHOICES),
        action=f"/admin/keys/{key.key_id}/rotate",
        button="Rotate this key",
        cancel="/admin/keys",
        danger=False,
    )


@router.post("/admin/keys/{key_id}/rotate")
def rotate(request: Request, key_id: str, form: KeysEditor) -> Response:
    grace = form.get("grace_seconds", "0")
    if grace not in GRACE_CHOICES:
        raise ValidationError("choose one of the grace periods offered")
    key = _key(request, form.who, key_id)
    rotated = rotate_key(
        _services(request).store,
        form.who.tenant,
        key.key_id,
        grace=timedelta(seconds=int(grace)),
        revoked_by=form.who.key.key_id,
    )
    _forget_cached_keys(request)
    return _keys_page(request, form.who, issued=rotated.issued)


def _forget_cached_keys(request: Request) -> None:
    """This process changed a key: its key cache reads the revocations again at once."""
    cache: KeyCache = request.app.state.key_cache
    cache.invalidate()


# Tenants ----------------------------------------------------------------------------------------


def _tenants_page(
    request: Request, who: Principal, *, issued: IssuedKey | None = None, error: str | None = None
) -> Response:
    reports: Reports = request.app.state.admin_reports
    return render(
        request,
        who,
        "admin/tenants.html",
        title="Tenants",
        tenants=reports.tenants(),
        issued=issued,
        error=error,
        status=201 if issued else (422 if error else 200),
    )


@router.get("/admin/tenants")
def tenants_page(request: Request, who: Operator) -> Response:
    return _tenants_page(request, who)


@router.post("/admin/tenants")
def create_tenant(request: Request, form: OperatorForm) -> Response:
    name = form.get("name")
    try:
        check_tenant_name(name)
    except ValidationError as exc:
        return _tenants_page(request, form.who, error=f"{exc}.")
    store = _services(request).store
    if not store.ensure_tenant(name):
        return _tenants_page(request, form.who, error=f"The tenant {name!r} exists already.")
    issued = create_key(store, name, Role.ADMIN, f"first admin key, from {form.who.key.key_id}")
    return _tenants_page(request, form.who, issued=issued)
