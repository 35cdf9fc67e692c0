"""Tenant signing keys: created once, kept across restarts, rotated without losing old ones."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from consentry.domain.errors import ValidationError
from consentry.ledger.checkpoint import SigningKey, generate_private_key
from consentry.signing import TenantKeyring


def test_created_on_first_use_private_and_stable(tmp_path: Path) -> None:
    ring = TenantKeyring(tmp_path)
    key = ring.signing_key("acme")
    path = tmp_path / "acme" / "current.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key.name == "consentry/acme"
    again = TenantKeyring(tmp_path).signing_key("acme")
    assert again.key_id == key.key_id
    assert TenantKeyring(tmp_path).signing_key("other").key_id != key.key_id


def test_rotation_keeps_old_public_keys(tmp_path: Path) -> None:
    ring = TenantKeyring(tmp_path)
    old = ring.signing_key("acme")
    signature = old.sign(b"checkpoint")
    new = ring.rotate("acme")
    assert new.key_id != old.key_id
    verifiers = TenantKeyring(tmp_path).verifiers("acme")
    assert [v.key_id for v in verifiers] == [new.key_id, old.key_id]
    assert verifiers[1].verify(signature, b"checkpoint")


def test_inline_keys_from_settings(tmp_path: Path) -> None:
    inline = SigningKey("consentry/acme", generate_private_key())
    ring = TenantKeyring(tmp_path, inline={"acme": inline.to_string()})
    assert ring.signing_key("acme").key_id == inline.key_id
    assert not (tmp_path / "acme").exists()
    with pytest.raises(ValidationError, match="CONSENTRY_SIGNING_KEYS"):
        ring.rotate("acme")


def test_tenant_names_cannot_escape_the_folder(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        TenantKeyring(tmp_path).signing_key("../etc")
