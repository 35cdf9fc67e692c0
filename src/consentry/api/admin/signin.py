"""Signing in to the console with an API key, and signing out."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from consentry.api.admin.console import HTML_HEADERS, admin_router, render
from consentry.api.admin.session import (
    AnyoneForm,
    FormRefused,
    check_origin,
    current,
    end_session,
    open_session,
    pre_session,
    read_form,
    set_pre_session,
    sign_in_token,
    token_matches,
)
from consentry.keys import AuthenticationError, PermissionDeniedError, authenticate
from consentry.services import Services

router = admin_router()


def safe_next(target: str | None) -> str:
    """Only a console address of this server: never an open redirect."""
    if target and target.startswith("/admin") and not target.startswith("/admin//"):
        return target
    return "/admin"


def _form(
    request: Request, next_page: str, error: str | None = None, status: int = 200
) -> HTMLResponse:
    pre, new = pre_session(request)
    response = render(
        request,
        None,
        "admin/sign_in.html",
        title="Sign in",
        status=status,
        sign_in_csrf=sign_in_token(pre),
        next_page=next_page,
        error=error,
    )
    if new:
        set_pre_session(request, response, pre)
    return response


@router.get("/admin/sign-in", response_class=HTMLResponse)
def sign_in_form(
    request: Request, next: Annotated[str | None, Query(max_length=512)] = None
) -> Response:
    if current(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303, headers=HTML_HEADERS)
    return _form(request, safe_next(next))


@router.post("/admin/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request) -> Response:
    check_origin(request)
    fields = await read_form(request)
    next_page = safe_next(fields.get("next", [""])[0])
    pre, new = pre_session(request)
    if new or not token_matches(sign_in_token(pre), {"csrf": fields.get("csrf", [""])}):
        raise FormRefused(
            "the sign-in form has expired or did not come from this server: open it again"
        )
    key_text = fields.get("key", [""])[0].strip()
    services: Services = request.app.state.services
    try:
        key = authenticate(services.store, f"Bearer {key_text}")
        response = RedirectResponse(next_page, status_code=303, headers=HTML_HEADERS)
        open_session(request, response, key, services.settings.admin_session_minutes)
    except AuthenticationError:
        return _form(
            request, next_page, "This key is not valid: it is unknown, mistyped or revoked.", 401
        )
    except PermissionDeniedError as exc:
        return _form(request, next_page, f"This key cannot open the console: {exc}.", 403)
    return response


@router.post("/admin/sign-out")
def sign_out(request: Request, form: AnyoneForm) -> Response:
    response = RedirectResponse("/admin/sign-in", status_code=303, headers=HTML_HEADERS)
    end_session(request, response, form.who)
    return response
