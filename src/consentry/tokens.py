"""Consent tokens: compact JWS (RFC 7515) signed with the tenant's Ed25519 key (EdDSA, RFC 8037).

The banner's collection endpoint and the preference center put a *consent token* in a first-party
cookie (`consentry`). It carries the person's choices, so that later page loads, and any service
at the edge (a CDN worker, a reverse proxy, a backend), can act on them without asking the
server: verifying one needs the tenant's public key only.

    from consentry.tokens import verify_consent_token
    token = verify_consent_token(cookie_value, "consentry/default+1a2b3c4d+AUf...")
    if token.allows("analytics"):
        ...

A token is three base64url parts, `header.payload.signature`:
- header: `{"alg": "EdDSA", "kid": "<hex signed-note key id>", "typ": "JWT"}`;
- payload: the claims below; signature: Ed25519 over `header.payload` (ASCII).

Claims of a consent token (`typ` = `consent`):
    iss  the key name (`<ledger origin>/<tenant>`)      tnt  the tenant
    iat  issued at (Unix seconds)                        exp  expires at (Unix seconds)
    pos  the log position of the choice (read-your-writes token for the decision API)
    reg  `opt_in` or `opt_out`, the regime the banner applied; jur  the jurisdiction, if known
    p    {purpose id: permitted?} for the tenant's purposes
    cm   the seven Google Consent Mode v2 types, `granted` / `denied`
    tcf  the TC string (opt-in regime), gpp  the GPP string; gpc  whether GPC was honoured
    tcd  the TC string's ids (purpose consents `pc`, LI `pl`, special features `sf`, vendor
         consents `vc`, LI `vl`, disclosed `vd`, publisher consents `ppc`, LI `ppl`) and
         `cmp`, `cmpv`, `vlv`, `pv`, `cc` (CMP id and version, vendor list and policy versions,
         publisher country): what the page's `__tcfapi` answers from
    usn  the usnat section's fields (opt-out regime): what `__gpp('getSection')` answers
    cv   the banner configuration version the choice was made on
The subject is deliberately *not* in the consent token, which page scripts can read: it is in
the separate `consentry_sid` cookie (`typ` = `sid`), HttpOnly. A preference link carries a token
of `typ` = `pref` with a `jti` (its id): the preference center takes it once, records its id as
used, and hands the browser a short-lived token of `typ` = `psid` in an HttpOnly cookie instead
(api/pages.py), so a link that leaked after it was opened opens nothing. All verify with
`verify_token`.

A token states the choices when it was issued. A withdrawal made elsewhere (another device, the
API) reaches it only when it is re-issued (the next choice, or a visit to the preference center);
`exp` bounds that. A service that must know the latest state asks the decision API.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from consentry.ledger.checkpoint import (
    KeyFormatError,
    SigningKey,
    VerifierKey,
    key_id,
    load_public_key,
)

ALGORITHM = "EdDSA"
DEFAULT_LEEWAY_SECONDS = 60
MAX_TOKEN_BYTES = 8192

CONSENT = "consent"
SESSION = "sid"
PREFERENCES = "pref"
PREFERENCES_SESSION = "psid"


class TokenError(ValueError):
    """The token is malformed, signed by another key, expired, or of another kind."""


PublicKeyLike = Ed25519PublicKey | VerifierKey | str | bytes


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not text or any(c not in _B64URL for c in text):
        raise TokenError("a token part is not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenError(f"a token part is not base64url: {exc}") from None


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def sign_token(key: SigningKey, claims: Mapping[str, Any]) -> str:
    """A compact JWS of `claims`, signed by `key` (EdDSA); `iss` defaults to the key's name."""
    header = {"alg": ALGORITHM, "kid": key.key_id.hex(), "typ": "JWT"}
    body = {"iss": key.name, **claims}
    signing_input = (b64url(_json(header)) + "." + b64url(_json(body))).encode("ascii")
    return signing_input.decode("ascii") + "." + b64url(key.sign(signing_input))


def _json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def public_key_of(key: PublicKeyLike) -> Ed25519PublicKey:
    """Accepts a `cryptography` key, a VerifierKey, a signed-note verifier string
    (`name+keyid+base64`), base64 of the raw 32 bytes, PEM, or an OKP JWK (JSON)."""
    if isinstance(key, Ed25519PublicKey):
        return key
    if isinstance(key, VerifierKey):
        return key.public_key
    text = key.decode("ascii", "replace") if isinstance(key, bytes) else key
    stripped = text.strip()
    if stripped.startswith("{"):
        return _from_jwk(stripped)
    try:
        return load_public_key(key)
    except (KeyFormatError, ValueError) as exc:
        raise TokenError(f"cannot read the public key: {exc}") from None


def _from_jwk(text: str) -> Ed25519PublicKey:
    try:
        jwk = json.loads(text)
    except ValueError as exc:
        raise TokenError(f"the public key is not valid JSON: {exc}") from None
    if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise TokenError('a JWK public key must have "kty": "OKP" and "crv": "Ed25519"')
    raw = b64url_decode(str(jwk.get("x", "")))
    if len(raw) != 32:
        raise TokenError("the JWK's x is not a 32-byte Ed25519 key")
    return Ed25519PublicKey.from_public_bytes(raw)


def public_jwk(verifier: VerifierKey) -> dict[str, str]:
    """The key as a JWK (RFC 8037), for edges that verify with WebCrypto or a JOSE library."""
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url(verifier.raw),
        "kid": verifier.key_id.hex(),
        "alg": ALGORITHM,
        "use": "sig",
    }


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A token whose signature, kind and lifetime checked out; `claims` is its payload."""

    claims: dict[str, Any]
    kid: str

    @property
    def kind(self) -> str:
        return str(self.claims.get("typ", ""))

    @property
    def tenant(self) -> str:
        return str(self.claims.get("tnt", ""))

    @property
    def subject(self) -> str | None:
        """Present in session and preference-link tokens, never in consent tokens."""
        sub = self.claims.get("sub")
        return str(sub) if sub is not None else None

    @property
    def issued_at(self) -> int:
        return int(self.claims.get("iat", 0))

    @property
    def expires_at(self) -> int:
        return int(self.claims.get("exp", 0))

    @property
    def purposes(self) -> dict[str, bool]:
        p = self.claims.get("p") or {}
        return {str(k): v is True for k, v in p.items()} if isinstance(p, dict) else {}

    @property
    def consent_mode(self) -> dict[str, str]:
        cm = self.claims.get("cm") or {}
        return {str(k): str(v) for k, v in cm.items()} if isinstance(cm, dict) else {}

    @property
    def tc_string(self) -> str | None:
        value = self.claims.get("tcf")
        return str(value) if value else None

    @property
    def gpp_string(self) -> str | None:
        value = self.claims.get("gpp")
        return str(value) if value else None

    @property
    def gpc(self) -> bool:
        return self.claims.get("gpc") is True

    @property
    def position(self) -> int | None:
        pos = self.claims.get("pos")
        return int(pos) if pos is not None else None

    def allows(self, purpose: str) -> bool:
        """Whether the token says `purpose` was permitted; unknown ones are not (fail closed)."""
        return self.purposes.get(purpose, False)


def verify_token(
    token: str,
    public_keys: PublicKeyLike | Iterable[PublicKeyLike],
    *,
    kind: str | None = None,
    tenant: str | None = None,
    now: float | None = None,
    leeway: int = DEFAULT_LEEWAY_SECONDS,
) -> VerifiedToken:
    """Check a token's signature against the tenant's public key(s), its kind and its lifetime.

    `public_keys` is one key or several (after a rotation, the current and the retired ones);
    each may be in any form `public_key_of` reads. Raises TokenError saying what is wrong.
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_BYTES:
        raise TokenError("not a token (empty, not text, or too long)")
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise TokenError("a token has three parts separated by '.' (compact JWS)")
    header = _decode_object(parts[0], "header")
    if header.get("alg") != ALGORITHM:
        raise TokenError(f"unsupported alg {header.get('alg')!r}: only EdDSA tokens are accepted")
    if "crit" in header:
        raise TokenError("the token's header has critical extensions this verifier does not know")
    signature = b64url_decode(parts[2])
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    keys = _key_list(public_keys)
    kid = str(header.get("kid", ""))
    for candidate in keys:
        try:
            candidate.verify(signature, signing_input)
        except Exception:  # cryptography raises InvalidSignature; any failure is "not this key"
            continue
        break
    else:
        raise TokenError("the signature does not verify with the given public key(s)")
    claims = _decode_object(parts[1], "payload")
    moment = time.time() if now is None else now
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise TokenError("the token has no expiry (exp)")
    if moment > exp + leeway:
        raise TokenError("the token has expired")
    iat = claims.get("iat")
    if isinstance(iat, int | float) and not isinstance(iat, bool) and iat > moment + leeway:
        raise TokenError("the token was issued in the future (iat); check the clocks")
    if kind is not None and claims.get("typ") != kind:
        raise TokenError(f"this is a {claims.get('typ')!r} token, not a {kind!r} token")
    if tenant is not None and claims.get("tnt") != tenant:
        raise TokenError(f"the token belongs to tenant {claims.get('tnt')!r}, not {tenant!r}")
    return VerifiedToken(claims, kid)


def verify_consent_token(
    token: str,
    public_key: PublicKeyLike | Iterable[PublicKeyLike],
    *,
    tenant: str | None = None,
    now: float | None = None,
    leeway: int = DEFAULT_LEEWAY_SECONDS,
) -> VerifiedToken:
    """Verify a consent token (the `consentry` cookie) with only the tenant's public key.

    Needs no server and no database: an edge function can run it. Returns the verified claims
    (`allows(purpose)`, `consent_mode`, `tc_string`, `gpp_string`, ...) or raises TokenError.
    """
    return verify_token(token, public_key, kind=CONSENT, tenant=tenant, now=now, leeway=leeway)


def _key_list(public_keys: PublicKeyLike | Iterable[PublicKeyLike]) -> list[Ed25519PublicKey]:
    if isinstance(public_keys, Ed25519PublicKey | VerifierKey | str | bytes):
        return [public_key_of(public_keys)]
    keys = [public_key_of(k) for k in public_keys]
    if not keys:
        raise TokenError("no public key given")
    return keys


def _decode_object(part: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(b64url_decode(part))
    except (ValueError, UnicodeDecodeError) as exc:
        raise TokenError(f"the token's {what} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise TokenError(f"the token's {what} is not a JSON object")
    return value


def unverified_tenant(token: str) -> str | None:
    """The `tnt` claim of a token, signature NOT checked: only to pick the key that checks it,
    or to count a request against its tenant's limits (api/ratelimit.py)."""
    parts = token.split(".")
    if len(parts) != 3 or len(token) > MAX_TOKEN_BYTES:
        return None
    try:
        claims = json.loads(b64url_decode(parts[1]))
    except (ValueError, TokenError):
        return None
    tenant = claims.get("tnt") if isinstance(claims, dict) else None
    return tenant if isinstance(tenant, str) and tenant else None


def kid_of(verifier: VerifierKey) -> str:
    """The `kid` a token signed by this key carries: the signed-note key id, in hex."""
    return key_id(verifier.raw, verifier.name).hex()
