"""Checking a receipt offline: receipt + inclusion proof + checkpoint + public key, nothing else.

What `consentry verify receipt` runs. It imports only the standard library, `cryptography` and
the ledger's own stdlib modules (verify, checkpoint, receipt, hasher): no server, no database,
no network. The inputs are the JSON documents the API returns, as an auditor would keep them:

* the receipt, from POST /v1/consents (an event's `receipt`);
* the inclusion proof, from GET /v1/ledger/proofs/inclusion (it carries a checkpoint too);
* a checkpoint (a signed note), if not the one in the proof;
* the tenant's public keys (signed-note verifier keys, `name+keyid+base64`);
* optionally the event itself (as exported), to check that its bytes are what the receipt signs;
* optionally a newer checkpoint and the consistency proof to it, from GET /v1/ledger/proofs/
  consistency, to carry an old receipt and checkpoint over to a newer tree.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from consentry.ledger.checkpoint import (
    Checkpoint,
    CheckpointError,
    KeyFormatError,
    VerifierKey,
    verify_checkpoint,
)
from consentry.ledger.receipt import Receipt, ReceiptError, verify_receipt
from consentry.ledger.verify import ProofError, hash_leaf, verify_consistency, verify_inclusion

__all__ = [
    "ReceiptCheck",
    "VerificationError",
    "canonical_event_bytes",
    "parse_verifier_keys",
    "verify_receipt_bundle",
]

EXPORT_ONLY_KEYS = ("ledger", "receipt")
"""Keys that an export adds to an event and that are not part of its canonical bytes."""


class VerificationError(ValueError):
    """Something does not verify; the message says which step and why."""


@dataclass
class ReceiptCheck:
    """What was verified, step by step (for the report)."""

    key: VerifierKey | None = None
    receipt: Receipt | None = None
    checkpoint: Checkpoint | None = None
    leaf_index: int | None = None
    newer: Checkpoint | None = None
    steps: list[str] = field(default_factory=list)


def canonical_event_bytes(event: Mapping[str, Any]) -> bytes:
    """An event's canonical bytes from its exported JSON fields (the stdlib json module alone).

    The same form as the server's RecordedEvent.canonical_bytes(): a format tag `v: 1` and the
    fields, sorted keys, no whitespace, UTF-8.
    """
    fields = {k: v for k, v in event.items() if k not in EXPORT_ONLY_KEYS}
    fields.setdefault("v", 1)
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def parse_verifier_keys(texts: Iterable[str]) -> list[VerifierKey]:
    """Verifier keys from strings, each a key (`name+keyid+base64`), several lines of them, or
    the JSON of GET /v1/ledger/keys."""
    keys: list[VerifierKey] = []
    for text in texts:
        stripped = text.strip()
        if stripped.startswith("{"):
            try:
                data = json.loads(stripped)
                stripped = "\n".join(str(k["verifier_key"]) for k in data["keys"])
            except (ValueError, KeyError, TypeError) as exc:
                raise VerificationError(
                    f"public keys: not the JSON of /v1/ledger/keys: {exc}"
                ) from None
        for line in stripped.splitlines():
            if line.strip():
                try:
                    keys.append(VerifierKey.parse(line))
                except KeyFormatError as exc:
                    raise VerificationError(f"public key {line.strip()[:40]!r}: {exc}") from None
    if not keys:
        raise VerificationError("no public key given")
    return keys


def _hashes(values: Any, what: str) -> list[bytes]:
    if not isinstance(values, list):
        raise VerificationError(f"{what} must be a list of base64 hashes")
    try:
        return [base64.b64decode(str(v), validate=True) for v in values]
    except (binascii.Error, ValueError) as exc:
        raise VerificationError(f"{what}: {exc}") from None


def _receipt_of(document: Mapping[str, Any]) -> Mapping[str, Any]:
    """The receipt in a receipt, an event carrying one, or a POST response with one event."""
    if "signature" in document:
        return document
    if isinstance(document.get("receipt"), Mapping):
        return document["receipt"]  # type: ignore[no-any-return]
    events = document.get("events")
    if isinstance(events, list) and len(events) == 1 and isinstance(events[0], Mapping):
        return _receipt_of(events[0])
    raise VerificationError(
        "no receipt found: give the `receipt` object of one event of POST /v1/consents"
    )


def verify_receipt_bundle(
    receipt: Mapping[str, Any],
    inclusion: Mapping[str, Any],
    keys: list[VerifierKey],
    *,
    checkpoint: str | None = None,
    event: Mapping[str, Any] | None = None,
    newer_checkpoint: str | None = None,
    consistency: Mapping[str, Any] | None = None,
) -> ReceiptCheck:
    """Check everything offline; return what was verified or raise VerificationError."""
    check = ReceiptCheck()
    # 1. The receipt: signed by the tenant's key (any key it ever used).
    try:
        check.receipt = Receipt.from_json_dict(_receipt_of(receipt))
        check.key = verify_receipt(check.receipt, keys)
    except ReceiptError as exc:
        raise VerificationError(f"receipt: {exc}") from None
    origin = check.key.name
    check.steps.append(
        f"receipt signed by {origin} (key {check.key.key_id.hex()}): event at position"
        f" {check.receipt.position}, recorded {check.receipt.recorded_at.isoformat()}"
    )
    # 2. The event, when given: its bytes are what the receipt signs.
    if event is not None:
        if hash_leaf(canonical_event_bytes(event)) != check.receipt.event_hash:
            raise VerificationError(
                "event: its canonical bytes do not hash to the receipt's event hash (the event"
                " was altered, or is another event)"
            )
        check.steps.append(f"event {event.get('event_id')} hashes to the receipt's event hash")
    # 3. The checkpoint: signed by the same log.
    note = checkpoint if checkpoint is not None else inclusion.get("checkpoint")
    if not isinstance(note, str):
        raise VerificationError("no checkpoint: give one, or a proof that carries it")
    try:
        check.checkpoint = verify_checkpoint(note, keys, origin=origin)
    except CheckpointError as exc:
        raise VerificationError(f"checkpoint: {exc}") from None
    check.steps.append(
        f"checkpoint signed by {origin}: {check.checkpoint.size} leaves, root"
        f" {base64.b64encode(check.checkpoint.root_hash).decode()}"
    )
    # 4. The inclusion proof: the receipt's event hash is a leaf of that tree.
    try:
        index = int(inclusion["leaf_index"])
        size = int(inclusion["tree_size"])
    except (KeyError, TypeError, ValueError) as exc:
        raise VerificationError(f"inclusion proof: missing or bad field {exc}") from None
    if size != check.checkpoint.size:
        raise VerificationError(
            f"inclusion proof is for a tree of {size} leaves, the checkpoint has"
            f" {check.checkpoint.size}: ask the proof at size={check.checkpoint.size}"
        )
    proof = _hashes(inclusion.get("inclusion_proof"), "inclusion proof")
    try:
        verify_inclusion(check.receipt.event_hash, index, size, proof, check.checkpoint.root_hash)
    except ProofError as exc:
        raise VerificationError(f"inclusion proof: {exc}") from None
    check.leaf_index = index
    check.steps.append(f"the event is leaf {index} of the tree of {size} leaves")
    # 5. Optionally: a newer tree extends this one.
    if newer_checkpoint is not None or consistency is not None:
        if newer_checkpoint is None or consistency is None:
            raise VerificationError("give both the newer checkpoint and the consistency proof")
        try:
            check.newer = verify_checkpoint(newer_checkpoint, keys, origin=origin)
        except CheckpointError as exc:
            raise VerificationError(f"newer checkpoint: {exc}") from None
        if (consistency.get("from"), consistency.get("to")) != (size, check.newer.size):
            raise VerificationError(
                f"consistency proof is from {consistency.get('from')} to"
                f" {consistency.get('to')}; it must go from {size} to {check.newer.size}"
            )
        try:
            verify_consistency(
                size,
                check.newer.size,
                _hashes(consistency.get("consistency_proof"), "consistency proof"),
                check.checkpoint.root_hash,
                check.newer.root_hash,
            )
        except ProofError as exc:
            raise VerificationError(f"consistency proof: {exc}") from None
        check.steps.append(
            f"the newer tree of {check.newer.size} leaves extends it: the event is still there,"
            " unchanged"
        )
    return check
