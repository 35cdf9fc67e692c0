"""API keys: created once, shown once, stored only as a hash.

A key reads `csk_<key id>_<secret>`. The key id is public (it appears in listings and logs); the
secret is 32 random bytes. The database keeps SHA-256 of the whole key: a fast hash suffices
because the secret has 256 bits of entropy, so there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from consentry.domain.errors import ConflictError, DomainError, NotFoundError, ValidationError
from consentry.storage.base import ApiKey, ConsentStore, Role
from consentry.storage.sql import utcnow

PREFIX = "csk_"


class AuthenticationError(DomainError):
    code = "unauthenticated"


class PermissionDeniedError(DomainError):
    code = "forbidden"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: str
    record: ApiKey


def create_key(store: ConsentStore, tenant: str, role: Role, label: str = "") -> IssuedKey:
    """Make a new key for `tenant`; the clear key exists only in the return value."""
    key_id = secrets.token_hex(6)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    record = ApiKey(key_id=key_id, tenant=tenant, role=role, created_at=utcnow(), label=label)
    store.add_api_key(record, hash_key(key))
    return IssuedKey(key, record)


def authenticate(store: ConsentStore, authorization: str | None) -> ApiKey:
    """Resolve an `Authorization: Bearer <key>` header to its key, or raise."""
    record = store.find_api_key(hash_key(bearer_token(authorization)))
    if record is None or is_revoked(record):
        raise AuthenticationError("unknown or revoked API key")
    return record


def bearer_token(authorization: str | None) -> str:
    """The key an `Authorization: Bearer <key>` header carries, or AuthenticationError (no
    database needed to refuse a malformed header)."""
    if not authorization:
        raise AuthenticationError("missing Authorization header; send 'Bearer <api key>'")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationError("the Authorization header must be 'Bearer <api key>'")
    if not token.startswith(PREFIX):
        raise AuthenticationError("that is not a Consentry API key")
    return token


def is_revoked(key: ApiKey, now: datetime | None = None) -> bool:
    """Revoked by now (a rotated key stays valid until its grace period ends)."""
    return key.revoked_at is not None and key.revoked_at <= (now or utcnow())


MAX_GRACE = timedelta(days=30)


def revoke_key(
    store: ConsentStore, tenant: str, key_id: str, *, revoked_by: str = "", force: bool = False
) -> ApiKey:
    """Revoke a key now; every server refuses it within a second (api/deps.py, KeyCache).

    The tenant's last admin key in force is kept (ConflictError) unless `force`: through the
    API that would lock the tenant out of its own administration; the CLI's operator, who can
    always create a key on the database, may force it.
    """
    return store.revoke_api_key(
        tenant, key_id, utcnow(), revoked_by=revoked_by, keep_an_admin=not force
    )


@dataclass(frozen=True, slots=True)
class RotatedKey:
    issued: IssuedKey
    old: ApiKey


def rotate_key(
    store: ConsentStore,
    tenant: str,
    key_id: str,
    *,
    grace: timedelta = timedelta(0),
    revoked_by: str = "",
) -> RotatedKey:
    """Issue a replacement (same tenant, role and label) and revoke the old key after `grace`
    (0: at once), so clients can switch without a gap."""
    if grace < timedelta(0) or grace > MAX_GRACE:
        raise ValidationError(f"the grace period must be between 0 and {MAX_GRACE.days} days")
    old = next((k for k in store.list_api_keys(tenant) if k.key_id == key_id), None)
    if old is None:
        raise NotFoundError(f"the tenant has no API key {key_id!r}")
    if is_revoked(old):
        raise ConflictError(f"API key {key_id!r} is revoked; create a new key instead")
    issued = create_key(store, tenant, old.role, old.label)
    revoked = store.revoke_api_key(
        tenant, key_id, utcnow() + grace, revoked_by=revoked_by, keep_an_admin=False
    )
    return RotatedKey(issued, revoked)


class Scope:
    """What a route needs; each role holds a set of scopes."""

    CATALOG_WRITE = "catalog:write"
    CATALOG_READ = "catalog:read"
    RECORD = "consents:write"
    DECIDE = "decisions:read"
    STATE_READ = "state:read"
    HISTORY_READ = "history:read"
    CHANGES_READ = "changes:read"
    LEDGER_READ = "ledger:read"  # checkpoints, proofs, public keys: hashes, no event data
    KEYS_MANAGE = "keys:manage"  # create, list, revoke and rotate the tenant's API keys


ALL_SCOPES = frozenset(v for k, v in vars(Scope).items() if k.isupper())

ROLE_SCOPES: dict[Role, frozenset[str]] = {
    Role.ADMIN: ALL_SCOPES,
    Role.COLLECTOR: frozenset(
        {Scope.CATALOG_READ, Scope.RECORD, Scope.DECIDE, Scope.STATE_READ, Scope.LEDGER_READ}
    ),
    Role.CHECKER: frozenset({Scope.CATALOG_READ, Scope.DECIDE, Scope.CHANGES_READ}),
    Role.AUDITOR: frozenset(
        {
            Scope.CATALOG_READ,
            Scope.DECIDE,
            Scope.STATE_READ,
            Scope.HISTORY_READ,
            Scope.CHANGES_READ,
            Scope.LEDGER_READ,
        }
    ),
}


def may_read_evidence(key: ApiKey) -> bool:
    """An event's personal evidence (IP, user agent, raw signal) is part of the history: only
    roles that may read history see it, whichever route returns the event. Deciding needs none
    of it, so a checker's feed and snapshot carry it as null."""
    return Scope.HISTORY_READ in ROLE_SCOPES[key.role]


def require(key: ApiKey, scope: str) -> None:
    if scope not in ROLE_SCOPES[key.role]:
        allowed = sorted(r.value for r, s in ROLE_SCOPES.items() if scope in s)
        raise PermissionDeniedError(
            f"a {key.role.value} key cannot do this ({scope}); it needs a key with role"
            f" {' or '.join(allowed)}"
        )
