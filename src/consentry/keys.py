"""API keys: created once, shown once, stored only as a hash.

A key reads `csk_<key id>_<secret>`. The key id is public (it appears in listings and logs); the
secret is 32 random bytes. The database keeps SHA-256 of the whole key: a fast hash suffices
because the secret has 256 bits of entropy, so there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from consentry.domain.errors import DomainError
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
    if not authorization:
        raise AuthenticationError("missing Authorization header; send 'Bearer <api key>'")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationError("the Authorization header must be 'Bearer <api key>'")
    if not token.startswith(PREFIX):
        raise AuthenticationError("that is not a Consentry API key")
    record = store.find_api_key(hash_key(token))
    if record is None or record.revoked_at is not None:
        raise AuthenticationError("unknown or revoked API key")
    return record


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
