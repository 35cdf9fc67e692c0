"""Each tenant's Ed25519 signing key: created on first use, kept outside the database.

Checkpoints, receipts and consent tokens are signed with the tenant's key, so that anyone holding
the public key can verify them without trusting the server. The key lives where the settings say:
- `CONSENTRY_SIGNING_KEYS`, a JSON object {tenant: "PRIVATE+KEY+..."} (e.g. from a secret store);
- otherwise a folder (`CONSENTRY_SIGNING_KEYS_DIR`, default ./consentry-keys) holding, per tenant,
  `current.key` (mode 0600) and `retired/*.pub`: a rotation retires the old public key but keeps
  it, so everything signed before stays verifiable.
Never in the events table: whoever can write the log must not also hold the key that vouches for it.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from consentry.domain.errors import ValidationError
from consentry.ledger.checkpoint import SigningKey, VerifierKey, generate_private_key

_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def key_name(origin: str, tenant: str) -> str:
    """The name a tenant's key signs under: the ledger's origin for that tenant."""
    return f"{origin}/{tenant}"


@dataclass
class TenantKeyring:
    """Loads, creates and rotates tenant keys; thread-safe, cached in memory."""

    directory: Path
    origin: str = "consentry"
    inline: dict[str, str] = field(default_factory=dict)
    _cache: dict[str, SigningKey] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _folder(self, tenant: str) -> Path:
        if not _TENANT.match(tenant):
            raise ValidationError(f"tenant name {tenant!r} cannot name a key folder")
        return self.directory / tenant

    def signing_key(self, tenant: str) -> SigningKey:
        """The tenant's current key, created on first use."""
        with self._lock:
            cached = self._cache.get(tenant)
            if cached is not None:
                return cached
            if tenant in self.inline:
                key = SigningKey.parse(self.inline[tenant])
            else:
                key = self._load_or_create(tenant)
            self._cache[tenant] = key
            return key

    def _load_or_create(self, tenant: str) -> SigningKey:
        path = self._folder(tenant) / "current.key"
        if path.exists():
            return SigningKey.parse(path.read_text(encoding="utf-8"))
        path.parent.mkdir(parents=True, exist_ok=True)
        key = SigningKey(key_name(self.origin, tenant), generate_private_key())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            return SigningKey.parse(path.read_text(encoding="utf-8"))
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(key.to_string() + "\n")
            f.flush()
            os.fsync(f.fileno())
        return key

    def verifiers(self, tenant: str) -> list[VerifierKey]:
        """Every public key the tenant ever signed with: current first, then retired ones."""
        keys = [self.signing_key(tenant).verifier]
        if tenant not in self.inline:
            retired = self._folder(tenant) / "retired"
            if retired.is_dir():
                for pub in sorted(retired.glob("*.pub")):
                    keys.append(VerifierKey.parse(pub.read_text(encoding="utf-8")))
        return keys

    def rotate(self, tenant: str) -> SigningKey:
        """Retire the current key (its public half stays published) and start a new one."""
        if tenant in self.inline:
            raise ValidationError(
                "this tenant's key comes from CONSENTRY_SIGNING_KEYS: rotate it there, and keep"
                " the old public key for verifiers"
            )
        old = self.signing_key(tenant)
        folder = self._folder(tenant)
        retired = folder / "retired"
        retired.mkdir(parents=True, exist_ok=True)
        (retired / f"{old.key_id.hex()}.pub").write_text(
            old.verifier.to_string() + "\n", encoding="utf-8"
        )
        new = SigningKey(key_name(self.origin, tenant), generate_private_key())
        tmp = folder / "current.key.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(new.to_string() + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, folder / "current.key")
        with self._lock:
            self._cache[tenant] = new
        return new
