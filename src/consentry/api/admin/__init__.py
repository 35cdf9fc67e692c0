"""The operators' console at /admin (issue 15; docs/admin.md).

`install(app)` adds every console page to the app. A new page is a module with a `router`
(console.admin_router()) and its NAV entries, listed in PAGES below: the catch-all that answers
unknown console addresses with a page is added after them, so it never hides a page.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated

from fastapi import FastAPI, Path, Request, Response
from fastapi.responses import RedirectResponse

from consentry.api.admin import access, catalog, overview, signin, subjects
from consentry.api.admin.console import admin_router, error_page
from consentry.services import Services
from consentry.storage.admin_sessions import AdminSessionStore
from consentry.storage.reports import SqlReports

#: Every page module, in the order their routes are matched.
PAGES = [signin, overview, catalog, subjects, access]

ASSET_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}

assets = admin_router()
fallback = admin_router()


@assets.get("/admin/static/{name}")
def asset(name: Annotated[str, Path(pattern=r"^[a-z0-9-]{1,40}\.(css|js|svg)$")]) -> Response:
    """The console's own stylesheet, script and icons (ui/static/admin): nothing from elsewhere."""
    entry = resources.files("consentry.ui").joinpath("static", "admin", name)
    if not entry.is_file():
        return Response("not found", 404, media_type="text/plain")
    suffix = name[name.rindex(".") :]
    return Response(
        entry.read_bytes(),
        media_type=ASSET_TYPES[suffix],
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


@fallback.get("/admin/{rest:path}")
def not_found(request: Request, rest: str) -> Response:
    if not rest:
        return RedirectResponse("/admin", status_code=308)
    return error_page(request, 404, "There is no such page in the console.")


def install(app: FastAPI, services: Services) -> None:
    """Add the console to `app` (called once by create_app)."""
    app.state.admin_sessions = AdminSessionStore(services.store)
    app.state.admin_reports = SqlReports(services.store)
    app.include_router(assets)
    for page in PAGES:
        app.include_router(page.router)
    app.include_router(fallback)
