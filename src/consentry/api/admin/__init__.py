"""The operators' console at /admin (issue 15; docs/admin.md).

`install(app)` adds every console page to the app. A new page is a module with a `router`
(console.admin_router()) and its NAV entries, listed in PAGES below: the catch-all that answers
unknown console addresses with a page is added after them, so it never hides a page. The
console's stylesheet, script and icon are files under ui/static/admin/, served at
/static/admin/... like every other asset (api/assets.py).
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse

from consentry.api.admin import access, catalog, overview, signin, subjects
from consentry.api.admin.console import admin_router, error_page
from consentry.services import Services
from consentry.storage.admin_sessions import AdminSessionStore
from consentry.storage.reports import SqlReports

#: Every page module, in the order their routes are matched.
PAGES = [signin, overview, catalog, subjects, access]

fallback = admin_router()


@fallback.get("/admin/{rest:path}")
def not_found(request: Request, rest: str) -> Response:
    if not rest:
        return RedirectResponse("/admin", status_code=308)
    return error_page(request, 404, "There is no such page in the console.")


def install(app: FastAPI, services: Services) -> None:
    """Add the console to `app` (called once by create_app)."""
    app.state.admin_sessions = AdminSessionStore(services.store)
    app.state.admin_reports = SqlReports(services.store)
    for page in PAGES:
        app.include_router(page.router)
    app.include_router(fallback)
