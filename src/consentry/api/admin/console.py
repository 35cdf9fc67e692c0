"""The console's small framework: pages, navigation, rendering, notices and HTML errors.

A page is a route on an `admin_router()` (HTML errors, kept out of the OpenAPI document), a
`NavItem` in `NAV` (where it appears and who sees it), and a template that extends
"admin/layout.html". The dependencies of api/admin/session.py say who may see (`Viewer`) and who
may change (`Editor`: an admin, with the form's CSRF token and origin checked before the handler
runs). docs/admin.md walks through adding a page.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute

from consentry.api.admin.session import (
    COOKIE_PATH,
    NOTICE_COOKIE,
    Principal,
    SignInRequired,
    current,
    notice_cookie,
    read_notice,
    secure,
)
from consentry.api.security_headers import PAGE_POLICY
from consentry.domain.errors import ConflictError, DomainError, NotFoundError, ValidationError
from consentry.keys import AuthenticationError, PermissionDeniedError
from consentry.storage.base import Role, SchemaError, StoreUnavailableError
from consentry.ui import admin as ui

log = logging.getLogger("consentry.admin")

#: Every page's policy (api/security_headers.py): scripts, styles and images from this server
#: only, no inline script or style, no framing, forms post only here. Set on each console
#: answer itself (redirects included), with no-store: a console page is never cached.
HTML_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": PAGE_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


# Navigation -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NavItem:
    """A place in the console's navigation.

    `role`: the least role that sees it (auditor: everyone signed in; admin: admins only).
    `operator`: only admins of the installation's own tenant. `planned`: not built yet; shown
    as text saying what will come, not as a link. `route`: shown only when the app has a route
    with this path (a page that depends on a feature still being built).
    """

    key: str
    label: str
    path: str
    section: str
    order: int
    role: Role = Role.AUDITOR
    operator: bool = False
    planned: str | None = None
    route: str | None = None


SECTIONS = ("Monitor", "Catalogue", "People", "Collection", "Access", "Integrations")


@dataclass
class Navigation:
    items: dict[str, NavItem] = field(default_factory=dict)

    def add(self, item: NavItem) -> NavItem:
        """Register (or replace, by key) a navigation entry."""
        self.items[item.key] = item
        return item

    def visible(self, request: Request, who: Principal) -> list[tuple[str, list[NavItem]]]:
        grouped: dict[str, list[NavItem]] = {}
        for item in sorted(self.items.values(), key=lambda i: (i.order, i.label)):
            if not who.allows(item.role, item.operator):
                continue
            if item.route is not None and not has_route(request, item.route):
                continue
            grouped.setdefault(item.section, []).append(item)
        order = {s: i for i, s in enumerate(SECTIONS)}
        return sorted(grouped.items(), key=lambda kv: order.get(kv[0], len(order)))


NAV = Navigation()


def has_route(request: Request, path: str, method: str = "GET") -> bool:
    """Whether the app serves `path` (a template such as /v1/subjects/{subject}/export)."""
    for route in request.app.router.routes:
        if getattr(route, "path", None) == path and method in (
            getattr(route, "methods", None) or ()
        ):
            return True
    return False


# Rendering --------------------------------------------------------------------------------------


def render(
    request: Request,
    who: Principal | None,
    template: str,
    *,
    title: str,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A console page: the layout with navigation, the notice left by the last redirect, the
    CSRF token for forms, and the security headers."""
    flash = read_notice(request, who)
    html = ui.render(
        template,
        title=title,
        who=who,
        nav=NAV.visible(request, who) if who else [],
        path=request.url.path,
        csrf=who.csrf if who else "",
        flash=flash,
        **context,
    )
    response = HTMLResponse(html, status, headers=HTML_HEADERS)
    if request.cookies.get(NOTICE_COOKIE):
        response.delete_cookie(NOTICE_COOKIE, path=COOKIE_PATH)
    return response


def confirm(
    request: Request,
    who: Principal,
    *,
    title: str,
    consequences: list[str],
    action: str,
    button: str,
    cancel: str,
    danger: bool = True,
    choices: tuple[str, str, dict[str, str]] | None = None,
) -> HTMLResponse:
    """A page that says what will happen and asks for the go-ahead: a POST to `action` (with
    the CSRF token, and `choices` as radio buttons: field name, legend, {value: text})."""
    extra: dict[str, Any] = {"choices": choices} if choices else {}
    return render(
        request,
        who,
        "admin/confirm.html",
        title=title,
        consequences=consequences,
        action=action,
        button=button,
        cancel=cancel,
        danger=danger,
        **extra,
    )


def redirect(request: Request, who: Principal, to: str, notice: str | None = None) -> Response:
    """After a change: 303 to `to`, which shows `notice` once."""
    response = RedirectResponse(to, status_code=303, headers=HTML_HEADERS)
    if notice:
        response.set_cookie(
            NOTICE_COOKIE,
            notice_cookie(who, notice),
            max_age=120,
            path=COOKIE_PATH,
            httponly=True,
            secure=secure(request),
            samesite="strict",
        )
    return response


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    who = None
    with contextlib.suppress(StoreUnavailableError):
        who = current(request)
    return render(
        request,
        who,
        "admin/error.html",
        title=_TITLES.get(status, "Error"),
        status=status,
        status_code=status,
        message=message,
    )


_TITLES = {
    400: "This request cannot be done",
    401: "Sign in again",
    403: "Not allowed",
    404: "Not found",
    409: "This cannot be done now",
    422: "Please correct the form",
    503: "Unavailable",
}
_STATUS: list[tuple[type[Exception], int]] = [
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (ValidationError, 422),
    (DomainError, 400),
]


def _sign_in_redirect(request: Request) -> Response:
    target = request.url.path
    if request.method == "GET" and request.url.query:
        target += "?" + request.url.query
    where = "/admin/sign-in"
    if target not in ("/admin", "/admin/") and request.method == "GET":
        where += "?next=" + quote(target, safe="")
    return RedirectResponse(where, status_code=303, headers=HTML_HEADERS)


class AdminRoute(APIRoute):
    """Turns every failure of a console route into a page (the API keeps its JSON errors)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                return _sign_in_redirect(request)
            except DomainError as exc:
                status = next(s for t, s in _STATUS if isinstance(exc, t))
                return error_page(request, status, str(exc))
            except RequestValidationError as exc:
                fields = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'form'}: {e.get('msg')}"
                    for e in exc.errors()[:5]
                )
                return error_page(request, 422, f"Something in the request is not valid: {fields}")
            except StoreUnavailableError as exc:
                log.warning("console: database unavailable: %s", exc)
                return error_page(request, 503, "The database is unavailable. Try again shortly.")
            except SchemaError as exc:
                return error_page(request, 503, str(exc))

        return route


def admin_router() -> APIRouter:
    """The router every console page is declared on: HTML errors, not in the OpenAPI document."""
    return APIRouter(route_class=AdminRoute, include_in_schema=False)
