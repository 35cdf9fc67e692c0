"""Security headers: every HTML page gets a Content-Security-Policy and its companions.

The pages hold a person's choices and a form that changes them, so:

- `Content-Security-Policy`: scripts and styles only from this server, as files (no inline
  script or style: the templates have none, ui/static holds them), no plugin, no `<base>`, forms
  post only here, and `frame-ancestors 'none'`: no other site may frame a page (clickjacking);
- `X-Frame-Options: DENY` for browsers that predate frame-ancestors;
- `Referrer-Policy: same-origin`: no address of ours (a preference link's token) leaks to
  another site; same-origin rather than no-referrer, which would send `Origin: null` on the
  form's POST and fail its origin check;
- `X-Content-Type-Options: nosniff` on every answer that passes here, HTML or not.

A route may set its own policy (the header is only added when missing): /docs and /redoc need
inline styles (Swagger UI and Redoc set them from their scripts) and a worker (Redoc's search);
the demo page shows the banner, which adds its stylesheet to the page it is embedded in.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
DEMO_POLICY = PAGE_POLICY.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline';"
    " img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:;"
    " form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

HTML_HEADERS = {
    "Content-Security-Policy": PAGE_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                if headers.get("content-type", "").startswith("text/html"):
                    for name, value in HTML_HEADERS.items():
                        headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
