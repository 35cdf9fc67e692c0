"""Signed receipts: the log's promise, at write time, that an event will be in the tree.

A receipt plays the part of a Certificate Transparency SCT. The write path returns it as soon as
the event is committed, before the integrator has added the event to the Merkle tree; once that
is done (milliseconds later), the event's inclusion proof against a signed checkpoint turns the
promise into proof. A receipt whose event never shows up in the tree is signed evidence that the
log broke its promise.

The signed bytes are a short text, so that anyone can rebuild them in any language::

    consentry.receipt/v1
    <key name>                      the log's key name (by convention its origin)
    <position>                      decimal, the event's log position
    <recorded_at>                   decimal microseconds since the Unix epoch, UTC
    <event hash>                    base64 of the RFC 9162 leaf hash of the canonical event

each line ending in a newline. Binding the key name keeps a receipt of one log from being passed
off as another's, even if both used the same key.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .checkpoint import SigningKey, VerifierKey
from .hasher import HASH_SIZE

__all__ = [
    "RECEIPT_VERSION",
    "Receipt",
    "ReceiptError",
    "receipt_message",
    "sign_receipt",
    "verify_receipt",
]

RECEIPT_VERSION = "consentry.receipt/v1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_POSITION = 2**63 - 1  # a signed 64-bit column in every database we target


class ReceiptError(ValueError):
    """A receipt is malformed or is not signed by a trusted key."""


def _micros(moment: datetime) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ReceiptError("recorded_at must be timezone-aware")
    return (moment - _EPOCH) // timedelta(microseconds=1)


def receipt_message(
    key_name: str, event_hash: bytes, position: int, recorded_at: datetime
) -> bytes:
    """The exact bytes a receipt's signature covers (see the module docstring).

    Deterministic by construction: integers in decimal, the time in whole microseconds UTC (the
    precision of PostgreSQL timestamps and Python datetimes), the hash in standard base64.
    """
    if not isinstance(event_hash, bytes) or len(event_hash) != HASH_SIZE:
        raise ReceiptError(f"event hash must be {HASH_SIZE} bytes")
    if isinstance(position, bool) or not isinstance(position, int):
        raise ReceiptError("position must be an integer")
    if not 0 <= position <= _MAX_POSITION:
        raise ReceiptError(f"position {position} is outside 0..2^63-1")
    if not key_name or any(ch.isspace() for ch in key_name):
        raise ReceiptError(f"invalid key name {key_name!r}")
    lines = [
        RECEIPT_VERSION,
        key_name,
        str(position),
        str(_micros(recorded_at)),
        base64.b64encode(event_hash).decode(),
    ]
    return ("\n".join(lines) + "\n").encode()


@dataclass(frozen=True)
class Receipt:
    """What the write path returns: which event, where in the log, when, and who signed it.

    ``event_hash`` is the RFC 9162 leaf hash of the event's canonical bytes, i.e. exactly the
    value its inclusion proof starts from. ``recorded_at`` is normalized to UTC.
    """

    event_hash: bytes
    position: int
    recorded_at: datetime
    key_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        _micros(self.recorded_at)  # refuses naive datetimes
        object.__setattr__(self, "recorded_at", self.recorded_at.astimezone(UTC))
        if not isinstance(self.key_id, bytes) or len(self.key_id) != 4:
            raise ReceiptError("key_id must be 4 bytes")
        if not isinstance(self.signature, bytes) or len(self.signature) != 64:
            raise ReceiptError("an Ed25519 signature is 64 bytes")

    def message(self, key_name: str) -> bytes:
        """The signed bytes, given the signer's key name (which the receipt itself omits)."""
        return receipt_message(key_name, self.event_hash, self.position, self.recorded_at)

    def to_json_dict(self) -> dict[str, str | int]:
        """A JSON-ready form: base64 for hashes and signatures, hex key ID, ISO 8601 time."""
        return {
            "event_hash": base64.b64encode(self.event_hash).decode(),
            "position": self.position,
            "recorded_at": self.recorded_at.isoformat().replace("+00:00", "Z"),
            "key_id": self.key_id.hex(),
            "signature": base64.b64encode(self.signature).decode(),
        }

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> Receipt:
        """Read ``to_json_dict``'s form back; the result still needs ``verify_receipt``."""
        try:
            recorded_at = datetime.fromisoformat(str(data["recorded_at"]))
            return cls(
                event_hash=base64.b64decode(str(data["event_hash"]), validate=True),
                position=int(data["position"]),
                recorded_at=recorded_at,
                key_id=bytes.fromhex(str(data["key_id"])),
                signature=base64.b64decode(str(data["signature"]), validate=True),
            )
        except ReceiptError:
            raise
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise ReceiptError(f"malformed receipt: {exc!r}") from None


def sign_receipt(
    signer: SigningKey, event_hash: bytes, position: int, recorded_at: datetime
) -> Receipt:
    """Sign the promise that the event with ``event_hash`` is at ``position`` in the log."""
    message = receipt_message(signer.name, event_hash, position, recorded_at)
    return Receipt(event_hash, position, recorded_at, signer.key_id, signer.sign(message))


def verify_receipt(receipt: Receipt, public_keys: Iterable[VerifierKey]) -> VerifierKey:
    """Check the receipt's signature against the trusted keys; return the key that signed it.

    The key is chosen by the receipt's key ID, so receipts signed before a key rotation verify
    as long as the old public key is still passed in.
    """
    candidates = [key for key in public_keys if key.key_id == receipt.key_id]
    if not candidates:
        raise ReceiptError(f"receipt is signed by unknown key {receipt.key_id.hex()}")
    for key in candidates:
        if key.verify(receipt.signature, receipt.message(key.name)):
            return key
    raise ReceiptError(f"receipt signature does not verify with key {receipt.key_id.hex()}")
