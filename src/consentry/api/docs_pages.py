"""/docs (Swagger UI) and /redoc, served from this server's own files.

FastAPI's built-in pages load their scripts, styles, a web font and a favicon from third-party
hosts: offline they are blank, and online every visit tells those hosts who reads the API docs,
which a privacy product cannot do. These pages use the vendored bundles under
ui/static/vendor/ (see its README for versions and licences), with no inline script, under a
Content-Security-Policy that allows nothing but this server (api/security_headers.py).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from consentry.api.security_headers import DOCS_POLICY
from consentry.ui import pages

router = APIRouter(tags=["pages"])

DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"


def _page(request: Request, template: str) -> HTMLResponse:
    html = pages.render(
        template, title=request.app.title, openapi_url=request.app.openapi_url or "/openapi.json"
    )
    return HTMLResponse(html, headers={"Content-Security-Policy": DOCS_POLICY})


@router.get(DOCS_PATH, include_in_schema=False)
def swagger_ui(request: Request) -> HTMLResponse:
    return _page(request, "swagger.html")


@router.get(REDOC_PATH, include_in_schema=False)
def redoc(request: Request) -> HTMLResponse:
    return _page(request, "redoc.html")
