"""Signed checkpoints of the ledger, in the C2SP tlog-checkpoint / signed-note text form.

A checkpoint commits the log to one tree (size and root hash) at one time. Once an auditor keeps
a signed checkpoint, the log cannot rewrite anything before it without either failing a
consistency proof or signing a second, conflicting checkpoint -- which is evidence in itself.

The text form is the one Go's sumdb, Sigstore, Trillian Tessera and the witness network use::

    consent.example.com/log
    1234
    3Tn5d1iA9C5Mw0cGaPn5hO7f0m4v8Kj1yCk+vU2mWk0=
    timestamp 1714564800123

    — consent.example.com/log Mvc0lV2d...base64(key id || Ed25519 signature)...

Line 1 is the origin (the log's name), line 2 the tree size in decimal, line 3 the base64 RFC
9162 root hash. Line 4 is our one extension: the signing time in milliseconds since the Unix
epoch, as in RFC 9162's signed tree heads (C2SP allows opaque extension lines; ours is optional
and covered by our signature). After a blank line come signature lines: an em dash, the key
name, and base64 of the 4-byte key ID followed by the Ed25519 signature of the text above the
blank line. The key ID is SHA-256(key name || 0x0A || 0x01 || public key)[:4], so the key that
signed a checkpoint can be told from the text; verifiers keep every public key the log ever used
(current and rotated out), and old checkpoints stay verifiable after a rotation.

This module also holds the key helpers (generation, PEM or raw base64 serialization, and the
signed-note verifier key string ``name+keyid+base64(0x01 || public key)``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .hasher import HASH_SIZE

__all__ = [
    "ED25519_SIGNATURE_TYPE",
    "Checkpoint",
    "CheckpointError",
    "KeyFormatError",
    "NoteSignature",
    "SignedCheckpoint",
    "SigningKey",
    "VerifierKey",
    "generate_private_key",
    "key_id",
    "load_private_key",
    "load_private_key_file",
    "load_public_key",
    "parse_checkpoint",
    "parse_note",
    "private_key_to_base64",
    "private_key_to_pem",
    "public_key_to_base64",
    "public_key_to_pem",
    "save_private_key_file",
    "sign_checkpoint",
    "sign_note",
    "verify_checkpoint",
    "verify_note",
]

ED25519_SIGNATURE_TYPE = 0x01
"""signed-note's signature type byte for Ed25519, hashed into the key ID."""

_EM_DASH = "\u2014"
_TIMESTAMP_PREFIX = "timestamp "
_MAX_UINT64 = 2**64 - 1
_MAX_SIGNATURES = 100  # signed-note: accept at least 16; bound the work an attacker can cause
_MAX_NOTE_BYTES = 1 << 20
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_VERIFIER_KEY = re.compile(r"[^+\s]+\+[0-9a-fA-F]{8}\+\S+")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class CheckpointError(ValueError):
    """A checkpoint is malformed, or none of its signatures verifies with a trusted key."""


class KeyFormatError(ValueError):
    """A key could not be read, with the reason (wrong format, wrong length, wrong password)."""


# --- keys --------------------------------------------------------------------------------------


def _check_key_name(name: str) -> None:
    # signed-note: non-empty, no Unicode spaces, no '+' (the verifier key string uses '+').
    if not name or "+" in name or any(ch.isspace() or ord(ch) < 0x20 for ch in name):
        raise ValueError(f"invalid key name {name!r}: must be non-empty, without spaces or '+'")


def _raw_public(public_key: Ed25519PublicKey | bytes) -> bytes:
    if isinstance(public_key, bytes):
        if len(public_key) != 32:
            raise KeyFormatError(f"an Ed25519 public key has 32 bytes, got {len(public_key)}")
        return public_key
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey | bytes, name: str) -> bytes:
    """The 4-byte signed-note key ID that names ``public_key`` under key ``name``.

    It lets a verifier holding several keys (before and after rotations) pick the right one for
    each signature. It is an identifier, not a security check: the signature is what counts.
    The name is hashed in because signed-note identifies a key by (name, ID).
    """
    _check_key_name(name)
    raw = _raw_public(public_key)
    material = name.encode() + b"\n" + bytes([ED25519_SIGNATURE_TYPE]) + raw
    return hashlib.sha256(material).digest()[:4]


@dataclass(frozen=True)
class VerifierKey:
    """A trusted public key and the name it signs under (by convention, the log's origin).

    Auditors configure one per key the log has ever used; publishing them as the signed-note
    verifier string (``to_string``) lets Go's ``note`` package and other tools use them too.
    """

    name: str
    raw: bytes
    """The 32-byte Ed25519 public key."""

    def __post_init__(self) -> None:
        _check_key_name(self.name)
        _raw_public(self.raw)

    @classmethod
    def from_public_key(cls, name: str, public_key: Ed25519PublicKey) -> VerifierKey:
        """Bind a public key to the key name its signatures carry."""
        return cls(name, _raw_public(public_key))

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The key as a ``cryptography`` object, to verify with."""
        return Ed25519PublicKey.from_public_bytes(self.raw)

    @property
    def key_id(self) -> bytes:
        """The 4-byte ID that signatures by this key carry."""
        return key_id(self.raw, self.name)

    def verify(self, signature: bytes, message: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``message``."""
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def to_string(self) -> str:
        """The signed-note verifier key: ``name+<8 hex key ID>+base64(0x01 || public key)``."""
        data = base64.b64encode(bytes([ED25519_SIGNATURE_TYPE]) + self.raw).decode()
        return f"{self.name}+{self.key_id.hex()}+{data}"

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        """Read a signed-note verifier key string, checking its key ID against its key."""
        parts = text.strip().split("+", 2)  # the base64 key itself may contain '+'
        if len(parts) != 3:
            raise KeyFormatError("a verifier key has the form name+keyid+base64key")
        name, hex_id, data = parts
        try:
            blob = _b64decode(data)
            wanted_id = bytes.fromhex(hex_id)
        except ValueError as exc:
            raise KeyFormatError(f"malformed verifier key: {exc}") from None
        if len(blob) != 33 or blob[0] != ED25519_SIGNATURE_TYPE:
            raise KeyFormatError("verifier key is not an Ed25519 (type 0x01) key")
        try:
            key = cls(name, blob[1:])
        except ValueError as exc:
            raise KeyFormatError(str(exc)) from None
        if len(wanted_id) != 4 or key.key_id != wanted_id:
            raise KeyFormatError("verifier key's key ID does not match its name and key")
        return key


@dataclass(frozen=True, eq=False)
class SigningKey:
    """The log's private key and the name it signs under (by convention, the log's origin)."""

    name: str
    private_key: Ed25519PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        _check_key_name(self.name)

    @property
    def verifier(self) -> VerifierKey:
        """The public half, to publish to auditors."""
        return VerifierKey.from_public_key(self.name, self.private_key.public_key())

    @property
    def key_id(self) -> bytes:
        """The 4-byte ID that this key's signatures carry."""
        return self.verifier.key_id

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature of ``message`` (64 bytes)."""
        return self.private_key.sign(message)

    def to_string(self) -> str:
        """The signed-note signer key, ``PRIVATE+KEY+name+keyid+base64(0x01 || seed)``.

        The form Go's ``note.NewSigner`` reads, so one key file can serve our server and Go tools.
        """
        seed = _b64decode(private_key_to_base64(self.private_key))
        data = base64.b64encode(bytes([ED25519_SIGNATURE_TYPE]) + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{data}"

    @classmethod
    def parse(cls, text: str) -> SigningKey:
        """Read a signed-note signer key string, checking its key ID against the key."""
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise KeyFormatError("a signer key has the form PRIVATE+KEY+name+keyid+base64key")
        _, _, name, hex_id, data = parts
        try:
            blob = _b64decode(data)
            wanted_id = bytes.fromhex(hex_id)
        except ValueError as exc:
            raise KeyFormatError(f"malformed signer key: {exc}") from None
        if len(blob) != 33 or blob[0] != ED25519_SIGNATURE_TYPE:
            raise KeyFormatError("signer key is not an Ed25519 (type 0x01) key")
        try:
            key = cls(name, Ed25519PrivateKey.from_private_bytes(blob[1:]))
        except ValueError as exc:
            raise KeyFormatError(str(exc)) from None
        if len(wanted_id) != 4 or key.key_id != wanted_id:
            raise KeyFormatError("signer key's key ID does not match its name and key")
        return key


def generate_private_key() -> Ed25519PrivateKey:
    """A new random Ed25519 key for signing checkpoints and receipts."""
    return Ed25519PrivateKey.generate()


def private_key_to_pem(key: Ed25519PrivateKey, password: bytes | None = None) -> bytes:
    """PKCS#8 PEM, encrypted when a password is given: the form OpenSSL and most KMS accept."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def private_key_to_base64(key: Ed25519PrivateKey) -> str:
    """The raw 32-byte seed in base64: short enough for an environment variable or a secret."""
    raw = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return base64.b64encode(raw).decode()


def load_private_key(data: str | bytes, password: bytes | None = None) -> Ed25519PrivateKey:
    """Read a private key given as PEM (PKCS#8) or as the base64 of its raw 32-byte seed."""
    blob = data.encode() if isinstance(data, str) else data
    if b"-----BEGIN" in blob:
        try:
            key = serialization.load_pem_private_key(blob, password=password)
        except (ValueError, TypeError) as exc:
            raise KeyFormatError(f"cannot read PEM private key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFormatError(f"PEM key is {type(key).__name__}, not Ed25519")
        return key
    try:
        raw = _b64decode(blob.decode("ascii").strip())
    except (ValueError, UnicodeDecodeError):
        raise KeyFormatError("private key is neither PEM nor base64") from None
    if len(raw) != 32:
        raise KeyFormatError(f"a raw Ed25519 private key has 32 bytes, got {len(raw)}")
    return Ed25519PrivateKey.from_private_bytes(raw)


def save_private_key_file(
    path: str | os.PathLike[str], key: Ed25519PrivateKey, password: bytes | None = None
) -> None:
    """Write the key as PEM, readable by its owner only, refusing to replace an existing file.

    Overwriting a signing key by accident would make every later checkpoint unverifiable with
    the published key; rotating is a deliberate act (new file, new published verifier key).
    """
    fd = os.open(os.fspath(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_key_to_pem(key, password))


def load_private_key_file(
    path: str | os.PathLike[str], password: bytes | None = None
) -> Ed25519PrivateKey:
    """Read a private key file holding PEM or a base64 raw seed."""
    return load_private_key(Path(path).read_bytes(), password)


def public_key_to_base64(public_key: Ed25519PublicKey) -> str:
    """The raw 32-byte public key in base64, the shortest form to publish."""
    return base64.b64encode(_raw_public(public_key)).decode()


def public_key_to_pem(public_key: Ed25519PublicKey) -> bytes:
    """SubjectPublicKeyInfo PEM, for tools that expect OpenSSL formats."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key(data: str | bytes) -> Ed25519PublicKey:
    """Read a public key given as PEM, as base64 of the raw 32 bytes, or as a verifier key."""
    blob = data.encode() if isinstance(data, str) else data
    if b"-----BEGIN" in blob:
        try:
            key = serialization.load_pem_public_key(blob)
        except ValueError as exc:
            raise KeyFormatError(f"cannot read PEM public key: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFormatError(f"PEM key is {type(key).__name__}, not Ed25519")
        return key
    try:
        text = blob.decode("ascii").strip()
    except UnicodeDecodeError:
        raise KeyFormatError("public key is neither PEM nor base64") from None
    if _VERIFIER_KEY.fullmatch(text):
        return VerifierKey.parse(text).public_key
    try:
        raw = _b64decode(text)
    except ValueError:
        raise KeyFormatError("public key is neither PEM, base64 nor a verifier key") from None
    return Ed25519PublicKey.from_public_bytes(_raw_public(raw))


def _b64decode(text: str) -> bytes:
    """Strict standard base64: anything that would not re-encode identically is refused."""
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"invalid base64: {exc}") from None
    if base64.b64encode(raw).decode() != text:
        raise ValueError("non-canonical base64")
    return raw


# --- checkpoints -------------------------------------------------------------------------------


def _to_millis(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _from_millis(millis: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=millis)


def _check_line(what: str, line: str) -> None:
    if not line:
        raise CheckpointError(f"{what} must not be empty")
    if any(ord(ch) < 0x20 or ch == "\x7f" for ch in line):
        raise CheckpointError(f"{what} must not contain newlines or control characters")


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: log ``origin`` had ``size`` entries, with root ``root_hash``, at ``timestamp``.

    The timestamp is kept to the millisecond (as in RFC 9162's tree heads) and in UTC, so that a
    checkpoint read back from its text equals the one that was signed.
    """

    origin: str
    size: int
    root_hash: bytes
    timestamp: datetime | None = None
    extensions: tuple[str, ...] = ()
    """Other extension lines, opaque to us, kept so that a foreign checkpoint re-serializes."""

    def __post_init__(self) -> None:
        _check_line("origin", self.origin)
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise CheckpointError("tree size must be an integer")
        if not 0 <= self.size <= _MAX_UINT64:
            raise CheckpointError(f"tree size {self.size} is outside 0..2^64-1")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            raise CheckpointError(f"root hash must be {HASH_SIZE} bytes")
        if self.timestamp is not None:
            if self.timestamp.tzinfo is None or self.timestamp.utcoffset() is None:
                raise CheckpointError("timestamp must be timezone-aware")
            moment = _from_millis(_to_millis(self.timestamp.astimezone(UTC)))
            if moment < _EPOCH:
                raise CheckpointError("timestamp is before the Unix epoch")
            object.__setattr__(self, "timestamp", moment)
        object.__setattr__(self, "extensions", tuple(self.extensions))
        for line in self.extensions:
            _check_line("extension line", line)
        if self.extensions and self.extensions[0].startswith(_TIMESTAMP_PREFIX):
            raise CheckpointError("set the timestamp through `timestamp`, not as an extension")

    def text(self) -> str:
        """The note text that is signed: origin, size, base64 root, extension lines."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode()]
        if self.timestamp is not None:
            lines.append(f"{_TIMESTAMP_PREFIX}{_to_millis(self.timestamp)}")
        lines.extend(self.extensions)
        return "\n".join(lines) + "\n"

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        """Parse the note text (no signatures); it proves nothing until a signature is checked."""
        if not text.endswith("\n"):
            raise CheckpointError("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError("checkpoint text needs origin, tree size and root hash lines")
        origin, size_line, root_line, *extensions = lines
        _check_line("origin", origin)
        if not _DECIMAL.fullmatch(size_line):
            raise CheckpointError(f"tree size {size_line!r} is not a decimal without leading 0s")
        try:
            root_hash = _b64decode(root_line)
        except ValueError as exc:
            raise CheckpointError(f"root hash line: {exc}") from None
        timestamp: datetime | None = None
        if extensions and extensions[0].startswith(_TIMESTAMP_PREFIX):
            millis = extensions.pop(0)[len(_TIMESTAMP_PREFIX) :]
            if not _DECIMAL.fullmatch(millis) or int(millis) > _MAX_UINT64:
                raise CheckpointError(f"timestamp {millis!r} is not decimal milliseconds")
            try:
                timestamp = _from_millis(int(millis))
            except OverflowError:
                raise CheckpointError(f"timestamp {millis} is out of range") from None
        return cls(origin, int(size_line), root_hash, timestamp, tuple(extensions))


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a signed note: who (name and key ID) and the signature bytes."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        """The signature line, without its newline."""
        blob = base64.b64encode(self.key_id + self.signature).decode()
        return f"{_EM_DASH} {self.name} {blob}"


@dataclass(frozen=True)
class SignedCheckpoint:
    """A parsed, not yet verified, signed checkpoint: its text, tree head and signatures."""

    text: str
    checkpoint: Checkpoint
    signatures: tuple[NoteSignature, ...]


def sign_note(text: str, *signers: SigningKey) -> str:
    """A signed note (C2SP signed-note) of ``text`` with one Ed25519 signature line per signer.

    Several signers let a key rotation overlap: sign with the old and the new key for a while,
    and auditors who hold either accept the note.
    """
    if not signers:
        raise ValueError("at least one signing key is needed")
    if not text.endswith("\n"):
        raise ValueError("note text must end with a newline")
    if any((ord(ch) < 0x20 and ch != "\n") or ch == "\x7f" for ch in text):
        raise ValueError("note text must not contain control characters other than newline")
    message = text.encode()
    lines = [
        NoteSignature(signer.name, signer.key_id, signer.sign(message)).line() for signer in signers
    ]
    return text + "\n" + "\n".join(lines) + "\n"


def parse_note(note: str | bytes) -> tuple[str, tuple[NoteSignature, ...]]:
    """Split a signed note into its text and its signature lines, checking the form only.

    Nothing in the result is trustworthy yet: use ``verify_note`` for that.
    """
    if isinstance(note, bytes):
        if len(note) > _MAX_NOTE_BYTES:
            raise CheckpointError("signed note is too large")
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise CheckpointError("signed note is not valid UTF-8") from None
    if len(note) > _MAX_NOTE_BYTES:
        raise CheckpointError("signed note is too large")
    if any((ord(ch) < 0x20 and ch != "\n") or ch == "\x7f" for ch in note):
        raise CheckpointError("signed note contains control characters other than newline")
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise CheckpointError("signed note needs text, a blank line, then signature lines")
    text = note[: split + 1]
    signature_lines = note[split + 2 : -1].split("\n")
    if len(signature_lines) > _MAX_SIGNATURES:
        raise CheckpointError(f"signed note has more than {_MAX_SIGNATURES} signatures")
    return text, tuple(_parse_signature_line(line) for line in signature_lines)


def _parse_signature_line(line: str) -> NoteSignature:
    prefix = _EM_DASH + " "
    if not line.startswith(prefix):
        raise CheckpointError(f"signature line does not start with an em dash: {line[:40]!r}")
    parts = line[len(prefix) :].split(" ")
    if len(parts) != 2:
        raise CheckpointError("signature line must be '— <key name> <base64 signature>'")
    name, data = parts
    try:
        _check_key_name(name)
        blob = _b64decode(data)
    except ValueError as exc:
        raise CheckpointError(f"malformed signature line: {exc}") from None
    if len(blob) < 5:
        raise CheckpointError("signature is too short to hold a key ID and a signature")
    return NoteSignature(name, blob[:4], blob[4:])


def verify_note(note: str | bytes, public_keys: Iterable[VerifierKey]) -> str:
    """Return the note's text if a trusted key signed it; raise CheckpointError otherwise.

    Follows signed-note: signatures from unknown (name, key ID) pairs are ignored, so witnesses'
    cosignatures and keys the auditor does not hold do no harm; a signature from a known key that
    fails rejects the whole note; at least one known key must have signed.
    """
    text, signatures = parse_note(note)
    known: dict[tuple[str, bytes], list[VerifierKey]] = {}
    for key in public_keys:
        known.setdefault((key.name, key.key_id), []).append(key)
    message = text.encode()
    verified = False
    for sig in signatures:
        candidates = known.get((sig.name, sig.key_id))
        if not candidates:
            continue
        if not any(key.verify(sig.signature, message) for key in candidates):
            raise CheckpointError(
                f"signature by known key {sig.name} ({sig.key_id.hex()}) does not verify"
            )
        verified = True
    if not verified:
        raise CheckpointError("note is not signed by any trusted key")
    return text


def sign_checkpoint(checkpoint: Checkpoint, *signers: SigningKey) -> str:
    """The signed note of ``checkpoint``: what the log publishes and auditors keep.

    Sign under the origin as key name (``SigningKey(checkpoint.origin, key)``), as C2SP asks.
    """
    return sign_note(checkpoint.text(), *signers)


def parse_checkpoint(note: str | bytes) -> SignedCheckpoint:
    """Split a signed checkpoint into its text, tree head and signatures, checking the form only.

    Nothing in the result is trustworthy yet: use ``verify_checkpoint`` for that.
    """
    text, signatures = parse_note(note)
    return SignedCheckpoint(text, Checkpoint.from_text(text), signatures)


def verify_checkpoint(
    note: str | bytes,
    public_keys: Iterable[VerifierKey],
    *,
    origin: str | None = None,
) -> Checkpoint:
    """Return the checkpoint if a trusted key signed it; raise CheckpointError otherwise.

    Pass every key the log has used, current and rotated out, so that checkpoints signed before
    a rotation still verify (each signature names its key by ID). ``origin``, when given, must
    match the checkpoint's origin line: a checkpoint of another log proves nothing here.
    """
    checkpoint = Checkpoint.from_text(verify_note(note, public_keys))
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"checkpoint is from origin {checkpoint.origin!r}, not {origin!r}")
    return checkpoint
