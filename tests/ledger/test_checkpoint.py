"""Signed checkpoints and receipts: text form, Go note interop, rotation, keys, tampering."""

from __future__ import annotations

import base64
import os
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentry.ledger.checkpoint import (
    Checkpoint,
    CheckpointError,
    KeyFormatError,
    SigningKey,
    VerifierKey,
    generate_private_key,
    key_id,
    load_private_key,
    load_private_key_file,
    load_public_key,
    parse_checkpoint,
    parse_note,
    private_key_to_base64,
    private_key_to_pem,
    public_key_to_base64,
    public_key_to_pem,
    save_private_key_file,
    sign_checkpoint,
    sign_note,
    verify_checkpoint,
    verify_note,
)
from consentry.ledger.hasher import EMPTY_ROOT, hash_leaf
from consentry.ledger.receipt import (
    Receipt,
    ReceiptError,
    receipt_message,
    sign_receipt,
    verify_receipt,
)

ORIGIN = "consent.example.com/log"
ROOT = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
WHEN = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)

# golang.org/x/mod/sumdb/note's documented example: Ed25519 is deterministic, so producing the
# same bytes shows that Go's note package (and Tessera, witnesses, ...) reads our notes.
GO_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNX"
    "gKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


@pytest.fixture(scope="module")
def signer() -> SigningKey:
    return SigningKey(ORIGIN, generate_private_key())


def test_go_note_known_answer() -> None:
    key = SigningKey.parse(GO_SIGNER)
    assert key.verifier.to_string() == GO_VERIFIER
    assert key.key_id.hex() == "c74f20a3"
    assert key.to_string() == GO_SIGNER
    assert sign_note(GO_TEXT, key) == GO_NOTE
    assert verify_note(GO_NOTE, [VerifierKey.parse(GO_VERIFIER)]) == GO_TEXT
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_note(GO_NOTE.replace("cryptography", "cryptographY"), [key.verifier])


def test_checkpoint_text_form(signer: SigningKey) -> None:
    checkpoint = Checkpoint(ORIGIN, 8, ROOT, WHEN)
    note = sign_checkpoint(checkpoint, signer)
    lines = note.split("\n")
    assert lines[:5] == [
        ORIGIN,
        "8",
        base64.b64encode(ROOT).decode(),
        "timestamp 1714564800123",
        "",
    ]
    assert lines[5].startswith(f"— {ORIGIN} ")
    blob = base64.b64decode(lines[5].split(" ")[2])
    assert blob[:4] == signer.key_id and len(blob) == 4 + 64
    assert lines[6:] == [""]  # the note ends with a newline
    assert checkpoint.text() == "\n".join(lines[:4]) + "\n"


def test_sign_parse_verify_round_trip(signer: SigningKey) -> None:
    checkpoint = Checkpoint(ORIGIN, 1234567, ROOT, WHEN)
    note = sign_checkpoint(checkpoint, signer)
    parsed = parse_checkpoint(note)
    assert parsed.checkpoint == checkpoint
    assert parsed.text == checkpoint.text()
    assert [(s.name, s.key_id) for s in parsed.signatures] == [(ORIGIN, signer.key_id)]
    assert verify_checkpoint(note, [signer.verifier], origin=ORIGIN) == checkpoint
    assert verify_checkpoint(note.encode(), [signer.verifier]) == checkpoint


def test_checkpoint_without_timestamp_is_plain_c2sp(signer: SigningKey) -> None:
    checkpoint = Checkpoint(ORIGIN, 0, EMPTY_ROOT)
    assert checkpoint.text() == f"{ORIGIN}\n0\n{base64.b64encode(EMPTY_ROOT).decode()}\n"
    assert verify_checkpoint(sign_checkpoint(checkpoint, signer), [signer.verifier]) == checkpoint


def test_foreign_extension_lines_survive(signer: SigningKey) -> None:
    checkpoint = Checkpoint(ORIGIN, 3, ROOT, WHEN, ("witness-hint abc", "other"))
    note = sign_checkpoint(checkpoint, signer)
    assert verify_checkpoint(note, [signer.verifier]) == checkpoint


def test_timestamp_is_normalized_to_utc_milliseconds() -> None:
    paris = timezone(timedelta(hours=2))
    local = datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=paris)
    checkpoint = Checkpoint(ORIGIN, 1, ROOT, local)
    assert checkpoint.timestamp == WHEN
    assert checkpoint.timestamp is not None and checkpoint.timestamp.tzinfo == UTC
    with pytest.raises(CheckpointError, match="timezone"):
        Checkpoint(ORIGIN, 1, ROOT, datetime(2024, 5, 1))


def test_rotated_keys_keep_old_checkpoints_verifiable() -> None:
    old = SigningKey(ORIGIN, generate_private_key())
    new = SigningKey(ORIGIN, generate_private_key())
    assert old.key_id != new.key_id
    before = sign_checkpoint(Checkpoint(ORIGIN, 10, ROOT, WHEN), old)
    during = sign_checkpoint(Checkpoint(ORIGIN, 20, ROOT, WHEN), old, new)
    after = sign_checkpoint(Checkpoint(ORIGIN, 30, ROOT, WHEN), new)
    everyone = [old.verifier, new.verifier]
    assert [verify_checkpoint(n, everyone).size for n in (before, during, after)] == [10, 20, 30]
    # An auditor who only learned the new key still accepts the overlap, not the old one.
    assert verify_checkpoint(during, [new.verifier]).size == 20
    with pytest.raises(CheckpointError, match="not signed by any trusted key"):
        verify_checkpoint(before, [new.verifier])


def test_unknown_signatures_are_ignored_but_a_bad_known_one_rejects(signer: SigningKey) -> None:
    witness = SigningKey("witness.example/w1", generate_private_key())
    note = sign_checkpoint(Checkpoint(ORIGIN, 5, ROOT, WHEN), signer, witness)
    assert verify_checkpoint(note, [signer.verifier]).size == 5
    # Same name and key ID as our key, but a forged signature: the whole note is refused.
    text, _ = parse_note(note)
    forged_blob = base64.b64encode(signer.key_id + bytes(64)).decode()
    forged = note + f"— {ORIGIN} {forged_blob}\n"
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_checkpoint(forged, [signer.verifier])
    assert text == Checkpoint(ORIGIN, 5, ROOT, WHEN).text()


def test_same_key_under_another_name_is_not_trusted(signer: SigningKey) -> None:
    impostor = SigningKey("other.example/log", signer.private_key)
    note = sign_checkpoint(Checkpoint(ORIGIN, 5, ROOT, WHEN), impostor)
    with pytest.raises(CheckpointError, match="not signed by any trusted key"):
        verify_checkpoint(note, [signer.verifier])


def test_origin_must_match_when_asked(signer: SigningKey) -> None:
    note = sign_checkpoint(Checkpoint("other.example/log", 5, ROOT), signer)
    assert verify_checkpoint(note, [signer.verifier]).origin == "other.example/log"
    with pytest.raises(CheckpointError, match="origin"):
        verify_checkpoint(note, [signer.verifier], origin=ORIGIN)


@settings(max_examples=200, deadline=None)
@given(position=st.integers(min_value=0), flip=st.integers(min_value=0, max_value=7))
def test_any_changed_byte_of_the_text_is_detected(position: int, flip: int) -> None:
    signer = SigningKey(ORIGIN, load_private_key(base64.b64encode(bytes(range(32))).decode()))
    note = sign_checkpoint(Checkpoint(ORIGIN, 77, ROOT, WHEN), signer)
    text_length = len(Checkpoint(ORIGIN, 77, ROOT, WHEN).text())
    raw = bytearray(note.encode())
    raw[position % text_length] ^= 1 << flip
    try:
        tampered = raw.decode()
    except UnicodeDecodeError:
        return  # not even text
    with pytest.raises(CheckpointError):
        verify_checkpoint(tampered, [signer.verifier])


@pytest.mark.parametrize(
    "note",
    [
        "",
        "origin\n1\nAAAA\n",  # no signatures
        "origin\n1\n" + base64.b64encode(ROOT).decode() + "\n\n",  # blank line, no signature
        "origin\n01\n" + base64.b64encode(ROOT).decode() + "\n\n— a AAAAAAAA\n",
        "origin\n-1\n" + base64.b64encode(ROOT).decode() + "\n\n— a AAAAAAAA\n",
        "origin\n1\n" + base64.b64encode(ROOT[:31]).decode() + "\n\n— a AAAAAAAA\n",
        "origin\n1\n" + base64.b64encode(ROOT).decode() + "\n\n- a AAAAAAAA\n",
        "origin\n1\n" + base64.b64encode(ROOT).decode() + "\n\n— a AAAA\n",  # too short
        "origin\n1\n" + base64.b64encode(ROOT).decode() + "\n\n— a+b AAAAAAAA\n",
        "origin\n1\n" + base64.b64encode(ROOT).decode() + "\ntimestamp x\n\n— a AAAAAAAA\n",
        "origin\n1\n" + base64.b64encode(ROOT).decode() + "\n\n— a AAAAAAAA",  # no final newline
        "orig\tin\n1\n" + base64.b64encode(ROOT).decode() + "\n\n— a AAAAAAAA\n",
        "origin\n1\n\n— a AAAAAAAA\n",  # two lines only
    ],
)
def test_malformed_notes_are_refused(note: str) -> None:
    with pytest.raises(CheckpointError):
        parse_checkpoint(note)


def test_checkpoint_fields_are_validated() -> None:
    with pytest.raises(CheckpointError):
        Checkpoint("", 1, ROOT)
    with pytest.raises(CheckpointError):
        Checkpoint("a\nb", 1, ROOT)
    with pytest.raises(CheckpointError):
        Checkpoint(ORIGIN, -1, ROOT)
    with pytest.raises(CheckpointError):
        Checkpoint(ORIGIN, 2**64, ROOT)
    with pytest.raises(CheckpointError):
        Checkpoint(ORIGIN, 1, ROOT[:31])
    with pytest.raises(CheckpointError):
        Checkpoint(ORIGIN, 1, ROOT, extensions=("",))
    with pytest.raises(CheckpointError):
        Checkpoint(ORIGIN, 1, ROOT, extensions=("timestamp 5",))


# --- keys ---------------------------------------------------------------------------------------


def test_key_id_is_the_signed_note_hash() -> None:
    import hashlib

    private = generate_private_key()
    raw = base64.b64decode(public_key_to_base64(private.public_key()))
    expected = hashlib.sha256(b"name.example/x\n\x01" + raw).digest()[:4]
    assert key_id(private.public_key(), "name.example/x") == expected
    assert key_id(raw, "name.example/x") == expected
    assert key_id(raw, "name.example/y") != expected
    with pytest.raises(ValueError):
        key_id(raw, "has space")
    with pytest.raises(ValueError):
        key_id(raw, "has+plus")


def test_private_key_serializations_round_trip(tmp_path: Path) -> None:
    private = generate_private_key()
    message = b"m"
    for loaded in (
        load_private_key(private_key_to_pem(private)),
        load_private_key(private_key_to_pem(private).decode()),
        load_private_key(private_key_to_base64(private)),
        load_private_key(private_key_to_pem(private, b"secret"), password=b"secret"),
    ):
        private.public_key().verify(loaded.sign(message), message)
    path = tmp_path / "ledger.pem"
    save_private_key_file(path, private)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert private_key_to_base64(load_private_key_file(path)) == private_key_to_base64(private)
    with pytest.raises(FileExistsError):
        save_private_key_file(path, generate_private_key())
    (tmp_path / "raw.key").write_text(private_key_to_base64(private) + "\n")
    assert private_key_to_base64(load_private_key_file(tmp_path / "raw.key")) == (
        private_key_to_base64(private)
    )


def test_verifier_key_whose_base64_contains_a_plus() -> None:
    # From transparency-dev/formats' note tests: the key material itself contains a '+'.
    plus_key = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"
    parsed = VerifierKey.parse(plus_key)
    assert parsed.name == "TEST"
    assert parsed.key_id.hex() == "7997405c"
    assert parsed.to_string() == plus_key
    assert public_key_to_base64(load_public_key(plus_key)) == base64.b64encode(parsed.raw).decode()


def test_public_key_serializations_round_trip() -> None:
    public = generate_private_key().public_key()
    verifier = VerifierKey.from_public_key(ORIGIN, public)
    for loaded in (
        load_public_key(public_key_to_pem(public)),
        load_public_key(public_key_to_base64(public)),
        load_public_key(verifier.to_string()),
    ):
        assert public_key_to_base64(loaded) == public_key_to_base64(public)
    assert VerifierKey.parse(verifier.to_string()) == verifier


@pytest.mark.parametrize(
    "text",
    [
        "not a key",
        base64.b64encode(bytes(31)).decode(),
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        GO_VERIFIER.replace("c74f20a3", "c74f20a4"),  # key ID does not match
        GO_VERIFIER.replace("+ARpc", "+AhpC"),  # wrong type byte
    ],
)
def test_bad_public_keys_are_refused(text: str) -> None:
    with pytest.raises(KeyFormatError):
        load_public_key(text)


def test_bad_private_keys_are_refused() -> None:
    with pytest.raises(KeyFormatError):
        load_private_key("not a key")
    with pytest.raises(KeyFormatError):
        load_private_key(base64.b64encode(bytes(33)).decode())
    with pytest.raises(KeyFormatError):
        load_private_key(private_key_to_pem(generate_private_key(), b"pw"), password=b"wrong")
    with pytest.raises(KeyFormatError):
        SigningKey.parse(GO_SIGNER.replace("c74f20a3", "00000000"))


# --- receipts -----------------------------------------------------------------------------------

EVENT_HASH = hash_leaf(b'{"event_id":"..."}')
RECORDED = datetime(2024, 5, 1, 12, 0, 0, 654321, tzinfo=UTC)


def test_receipt_message_is_deterministic_text() -> None:
    message = receipt_message(ORIGIN, EVENT_HASH, 42, RECORDED)
    assert (
        message
        == (
            f"consentry.receipt/v1\n{ORIGIN}\n42\n1714564800654321\n"
            f"{base64.b64encode(EVENT_HASH).decode()}\n"
        ).encode()
    )
    same_moment = RECORDED.astimezone(timezone(timedelta(hours=-5)))
    assert receipt_message(ORIGIN, EVENT_HASH, 42, same_moment) == message


def test_receipt_sign_and_verify(signer: SigningKey) -> None:
    receipt = sign_receipt(signer, EVENT_HASH, 42, RECORDED)
    assert receipt.key_id == signer.key_id
    assert verify_receipt(receipt, [signer.verifier]) == signer.verifier
    round_tripped = Receipt.from_json_dict(receipt.to_json_dict())
    assert round_tripped == receipt
    assert verify_receipt(round_tripped, [signer.verifier]) == signer.verifier


@pytest.mark.parametrize(
    "change",
    [
        {"event_hash": hash_leaf(b"other")},
        {"position": 43},
        {"recorded_at": RECORDED + timedelta(microseconds=1)},
        {"signature": bytes(64)},
    ],
)
def test_tampered_receipts_fail(signer: SigningKey, change: dict[str, object]) -> None:
    receipt = sign_receipt(signer, EVENT_HASH, 42, RECORDED)
    fields = {**receipt.__dict__, **change}
    with pytest.raises(ReceiptError, match="does not verify"):
        verify_receipt(Receipt(**fields), [signer.verifier])  # type: ignore[arg-type]


def test_receipt_of_another_log_or_unknown_key_fails(signer: SigningKey) -> None:
    other_log = SigningKey("other.example/log", signer.private_key)
    receipt = sign_receipt(other_log, EVENT_HASH, 42, RECORDED)
    with pytest.raises(ReceiptError, match="unknown key"):
        verify_receipt(receipt, [signer.verifier])
    rotated = SigningKey(ORIGIN, generate_private_key())
    old_receipt = sign_receipt(signer, EVENT_HASH, 1, RECORDED)
    assert verify_receipt(old_receipt, [rotated.verifier, signer.verifier]) == signer.verifier


def test_receipt_fields_are_validated(signer: SigningKey) -> None:
    with pytest.raises(ReceiptError):
        sign_receipt(signer, b"short", 1, RECORDED)
    with pytest.raises(ReceiptError):
        sign_receipt(signer, EVENT_HASH, -1, RECORDED)
    with pytest.raises(ReceiptError):
        sign_receipt(signer, EVENT_HASH, 1, datetime(2024, 1, 1))
    with pytest.raises(ReceiptError):
        Receipt.from_json_dict({"event_hash": "!!"})
