"""Consent tokens at the edge: verify with only the tenant's public key (function and CLI)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from consentry.cli import app
from consentry.ledger.checkpoint import SigningKey, generate_private_key, public_key_to_pem
from consentry.tokens import (
    TokenError,
    b64url,
    public_jwk,
    sign_token,
    verify_consent_token,
    verify_token,
)

KEY = SigningKey("consentry/default", generate_private_key())
OTHER = SigningKey("consentry/default", generate_private_key())


def consent(**extra: object) -> str:
    now = int(time.time())
    claims = {"typ": "consent", "tnt": "default", "iat": now, "exp": now + 600,
              "p": {"analytics": True, "ads": False}, "cm": {"ad_storage": "denied"}}  # fmt: skip
    claims.update(extra)
    return sign_token(KEY, claims)


@pytest.mark.parametrize(
    "public",
    [
        KEY.verifier.to_string(),
        KEY.verifier,
        KEY.verifier.public_key,
        base64.b64encode(KEY.verifier.raw).decode(),
        public_key_to_pem(KEY.verifier.public_key).decode(),
        json.dumps(public_jwk(KEY.verifier)),
    ],
    ids=["verifier-string", "verifier", "cryptography", "base64", "pem", "jwk"],
)
def test_verifies_with_the_public_key_in_any_form(public: object) -> None:
    token = verify_consent_token(consent(), public)  # type: ignore[arg-type]
    assert token.allows("analytics") and not token.allows("ads")
    assert not token.allows("unknown"), "fail closed"
    assert token.tenant == "default" and token.subject is None
    assert token.consent_mode == {"ad_storage": "denied"}
    assert token.claims["iss"] == "consentry/default"
    assert token.kid == KEY.key_id.hex()


def test_rotation_several_keys() -> None:
    assert verify_consent_token(consent(), [OTHER.verifier, KEY.verifier]).allows("analytics")


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (lambda: consent()[:-4] + "AAAA", "signature"),
        (lambda: sign_token(OTHER, {"typ": "consent", "exp": time.time() + 60}), "signature"),
        (lambda: consent(exp=int(time.time()) - 3600), "expired"),
        (lambda: consent(iat=int(time.time()) + 3600), "future"),
        (lambda: sign_token(KEY, {"typ": "consent"}), "expiry"),
        (lambda: consent(typ="sid"), "not a 'consent' token"),
        (lambda: consent(tnt="acme"), "tenant"),
        (lambda: "a.b", "three parts"),
        (lambda: "e30." + consent().split(".", 1)[1], "alg"),
        (lambda: b64url(b'{"alg":"none"}') + "." + consent().split(".")[1] + ".", "alg"),
        (lambda: "%%%." + consent().split(".", 1)[1], "base64url"),
    ],
    ids=[
        "tampered",
        "other-key",
        "expired",
        "future",
        "no-exp",
        "kind",
        "tenant",
        "parts",
        "no-alg",
        "alg-none",
        "garbage",
    ],
)
def test_refuses_what_is_not_a_valid_consent_token(token: object, message: str) -> None:
    with pytest.raises(TokenError, match=message):
        verify_consent_token(token(), KEY.verifier, tenant="default")  # type: ignore[operator]


def test_payload_cannot_be_changed_without_the_key() -> None:
    header, payload, sig = consent().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["p"]["ads"] = True
    forged = ".".join([header, b64url(json.dumps(claims).encode()), sig])
    with pytest.raises(TokenError, match="signature"):
        verify_token(forged, KEY.verifier)


def test_cli_verifies_offline(tmp_path: Path) -> None:
    runner = CliRunner()
    pub = tmp_path / "default.pub"
    pub.write_text(KEY.verifier.to_string())
    ok = runner.invoke(app, ["tokens", "verify", consent(), "--public-key-file", str(pub)])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["claims"]["p"] == {"analytics": True, "ads": False}
    bad = runner.invoke(
        app, ["tokens", "verify", consent(), "-k", OTHER.verifier.to_string(), "-t", "default"]
    )
    assert bad.exit_code == 4  # ExitCode.VERIFY_FAILED
    assert "signature" in bad.output
    stdin = runner.invoke(
        app, ["tokens", "verify", "-", "-k", KEY.verifier.to_string()], input=consent() + "\n"
    )
    assert stdin.exit_code == 0, stdin.output


def test_cli_public_key_and_link_verify_together(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {
        "CONSENTRY_SIGNING_KEYS_DIR": str(tmp_path / "keys"),
        "CONSENTRY_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}",
    }
    assert runner.invoke(app, ["migrate"], env=env).exit_code == 0
    pub = runner.invoke(app, ["tokens", "public-key"], env=env)
    assert pub.exit_code == 0, pub.output
    jwk = runner.invoke(app, ["tokens", "public-key", "--jwk"], env=env)
    assert json.loads(jwk.stdout)["kty"] == "OKP"
    link = runner.invoke(app, ["tokens", "preference-link", "u-1"], env=env)
    assert link.exit_code == 0, link.output
    token = link.stdout.strip().split("?t=", 1)[1]
    verified = verify_token(token, pub.stdout.strip(), kind="pref", tenant="default")
    assert verified.subject == "u-1"
    demo = runner.invoke(app, ["demo"], env=env)
    assert demo.exit_code == 0 and "set up" in demo.stdout
