"""Who is signed in to the console, and the proof that a form came from the console.

Sessions are server-side records (storage/admin_sessions.py, migration 0010): the cookie holds
32 random bytes, the database their SHA-256. Why not a signed token: sign-out must end a session
for good (a token stays valid until it expires), a revoked key must end its sessions at once (a
token would need a revocation list anyway), and several workers share nothing but the database.
Every request reads the session joined with its key: one indexed read, which an operator's page
view can afford.

The cookie is HttpOnly, SameSite=Strict, scoped to /admin, Secure when the request came over
https, and expires with the session. CSRF is a synchronizer token derived from the session id
(HMAC-SHA256 of it), so it is bound to the session, needs no storage and is never in the cookie;
every POST is also refused when its Origin header names another site. Before sign-in, a random
pre-session cookie plays the same part for the sign-in form itself (login CSRF).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import Depends, Request, Response

from consentry.bootstrap import DEFAULT_TENANT
from consentry.domain.errors import ValidationError
from consentry.keys import PermissionDeniedError
from consentry.storage.admin_sessions import AdminSessionStore
from consentry.storage.base import ApiKey, Role
from consentry.storage.sql import utcnow

SESSION_COOKIE = "consentry_admin"
PRE_SESSION_COOKIE = "consentry_admin_pre"
NOTICE_COOKIE = "consentry_admin_notice"
COOKIE_PATH = "/admin"
MAX_FORM_BYTES = 262_144
CONSOLE_ROLES = (Role.ADMIN, Role.AUDITOR)


class SignInRequired(Exception):
    """No valid session: the page redirects to the sign-in form (and back afterwards)."""


class FormRefused(PermissionDeniedError):
    """A POST without a valid CSRF token, or from another origin."""


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _mac(secret: str, purpose: str) -> str:
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """The signed-in person: the key they signed in with, and their session."""

    key: ApiKey
    session_id: str
    expires_at: datetime

    @property
    def tenant(self) -> str:
        return self.key.tenant

    @property
    def role(self) -> Role:
        return self.key.role

    @property
    def can_change(self) -> bool:
        """Admins change; auditors see (as in the API)."""
        return self.key.role is Role.ADMIN

    @property
    def is_operator(self) -> bool:
        """An admin of the installation's own tenant: may create tenants."""
        return self.can_change and self.key.tenant == DEFAULT_TENANT

    @property
    def csrf(self) -> str:
        return _mac(self.session_id, "csrf")

    def allows(self, role: Role, operator: bool = False) -> bool:
        if operator and not self.is_operator:
            return False
        return role is Role.AUDITOR or self.can_change


@dataclass(frozen=True, slots=True)
class Submission:
    """A POSTed form whose CSRF token and origin were checked, and who sent it."""

    who: Principal
    fields: dict[str, list[str]]

    def get(self, name: str, default: str = "") -> str:
        values = self.fields.get(name)
        return values[0].strip() if values else default

    def all(self, name: str) -> list[str]:
        return [v.strip() for v in self.fields.get(name, [])]

    def flag(self, name: str) -> bool:
        return self.get(name) in ("on", "true", "1", "yes")


def sessions(request: Request) -> AdminSessionStore:
    store: AdminSessionStore = request.app.state.admin_sessions
    return store


def secure(request: Request) -> bool:
    return request.url.scheme == "https"


def current(request: Request) -> Principal | None:
    """The session of this request, if any (None when absent, expired, ended or revoked)."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id or len(session_id) > 128:
        return None
    found = sessions(request).find(session_hash(session_id), utcnow())
    if found is None:
        return None
    return Principal(found.key, session_id, found.expires_at)


def open_session(request: Request, response: Response, key: ApiKey, minutes: int) -> None:
    """Record a session for `key` and hand its id to the browser."""
    if key.role not in CONSOLE_ROLES:
        raise PermissionDeniedError(
            f"a {key.role.value} key cannot sign in to the console: use an admin or auditor key"
        )
    session_id = secrets.token_urlsafe(32)
    now = utcnow()
    expires = now + timedelta(minutes=minutes)
    sessions(request).open(session_hash(session_id), key, now, expires)
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=minutes * 60,
        path=COOKIE_PATH,
        httponly=True,
        secure=secure(request),
        samesite="strict",
    )
    response.delete_cookie(PRE_SESSION_COOKIE, path=COOKIE_PATH)


def end_session(request: Request, response: Response, who: Principal) -> None:
    sessions(request).close(session_hash(who.session_id))
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, secure=secure(request))


# The sign-in form's own CSRF token (before any session exists) --------------------------------


def pre_session(request: Request) -> tuple[str, bool]:
    """The pre-session secret of this browser, and whether it is new (to be set)."""
    value = request.cookies.get(PRE_SESSION_COOKIE)
    if value and 20 <= len(value) <= 64:
        return value, False
    return secrets.token_urlsafe(24), True


def set_pre_session(request: Request, response: Response, value: str) -> None:
    response.set_cookie(
        PRE_SESSION_COOKIE,
        value,
        max_age=3600,
        path=COOKIE_PATH,
        httponly=True,
        secure=secure(request),
        samesite="strict",
    )


def sign_in_token(pre: str) -> str:
    return _mac(pre, "sign-in")


# Forms -------------------------------------------------------------------------------------


async def read_form(request: Request) -> dict[str, list[str]]:
    """An application/x-www-form-urlencoded body, bounded (no multipart: nothing is uploaded)."""
    raw = await request.body()
    if len(raw) > MAX_FORM_BYTES:
        raise ValidationError(f"the form is larger than {MAX_FORM_BYTES} bytes")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if raw and kind != "application/x-www-form-urlencoded":
        raise ValidationError("the console accepts forms only (application/x-www-form-urlencoded)")
    return parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=2000)


def check_origin(request: Request) -> None:
    """A form POSTed from another site is refused, whatever else it carries."""
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.url.netloc}"
    if origin is not None and origin != own:
        raise FormRefused("this form was sent from another site")


def token_matches(expected: str, fields: dict[str, list[str]]) -> bool:
    sent = fields.get("csrf", [""])[0]
    return hmac.compare_digest(expected.encode(), sent.encode())


def signed_in(request: Request) -> Principal:
    who = current(request)
    if who is None:
        raise SignInRequired()
    return who


def submission(role: Role, *, operator: bool = False) -> Any:
    """A dependency: the signed-in sender of a valid form, allowed to do what `role` may."""

    async def dependency(request: Request) -> Submission:
        who = signed_in(request)
        if not who.allows(role, operator):
            raise PermissionDeniedError(_refusal(who, role, operator))
        check_origin(request)
        fields = await read_form(request)
        if not token_matches(who.csrf, fields):
            raise FormRefused(
                "this form has expired or did not come from the console: reload the page and"
                " try again"
            )
        return Submission(who, fields)

    return dependency


def viewer(role: Role, *, operator: bool = False) -> Any:
    """A dependency: the signed-in person, allowed to see a page that needs `role`."""

    def dependency(request: Request) -> Principal:
        who = signed_in(request)
        if not who.allows(role, operator):
            raise PermissionDeniedError(_refusal(who, role, operator))
        return who

    return dependency


def _refusal(who: Principal, role: Role, operator: bool) -> str:
    if operator:
        return f"only an admin of the installation's own tenant ({DEFAULT_TENANT!r}) may do this"
    return f"you are signed in with a {who.role.value} key: it can see this but not change it"


# Notices shown once, after a redirect (flash) ---------------------------------------------------


def notice_cookie(who: Principal, message: str) -> str:
    """The message, signed with the session so that no one else can plant one."""
    body = base64.urlsafe_b64encode(message.encode()).decode()
    return f"{body}.{_mac(who.session_id, 'notice:' + body)[:32]}"


def read_notice(request: Request, who: Principal | None) -> str | None:
    value = request.cookies.get(NOTICE_COOKIE)
    if not value or who is None or "." not in value:
        return None
    body, mac = value.rsplit(".", 1)
    if not hmac.compare_digest(mac, _mac(who.session_id, "notice:" + body)[:32]):
        return None
    try:
        return base64.urlsafe_b64decode(body.encode()).decode()
    except ValueError:
        return None


Viewer = Annotated[Principal, Depends(viewer(Role.AUDITOR))]
Editor = Annotated[Submission, Depends(submission(Role.ADMIN))]
AnyoneForm = Annotated[Submission, Depends(submission(Role.AUDITOR))]
