"""The ledger over HTTP, on each backend: receipts, checkpoints, proofs, keys, history export.

Everything returned is checked the way an auditor would: with the public keys from
/v1/ledger/keys, the stdlib verifier and the checkpoint's signature, never by trusting the server.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from consentry.ledger.checkpoint import VerifierKey, verify_checkpoint
from consentry.ledger.receipt import Receipt, verify_receipt
from consentry.ledger.verify import hash_leaf, verify_consistency, verify_inclusion
from consentry.storage.base import Role
from tests.conftest import ApiClient


def b64(text: str) -> bytes:
    return base64.b64decode(text)


def keys_of(api: ApiClient, headers: dict[str, str] | None = None) -> list[VerifierKey]:
    r = api.client.get("/v1/ledger/keys", headers=headers)
    assert r.status_code == 200, r.text
    return [VerifierKey.parse(k["verifier_key"]) for k in r.json()["keys"]]


def canonical(event: dict[str, Any]) -> bytes:
    """An event's canonical bytes from its exported fields, with the stdlib alone."""
    fields = {k: v for k, v in event.items() if k not in ("ledger", "receipt")}
    text = json.dumps({"v": 1, **fields}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode()


def test_receipt_then_inclusion_proof(api: ApiClient) -> None:
    api.purpose("email")
    api.purpose("ads")
    body = api.record("u-1", email="given", ads="refused")
    keys = keys_of(api)
    exported = api.client.get("/v1/subjects/u-1/history").json()["events"]
    history = {e["event_id"]: e for e in exported}
    for event in body["events"]:
        receipt = Receipt.from_json_dict(event["receipt"])
        signer = verify_receipt(receipt, keys)
        assert signer.name == "consentry/default"
        assert receipt.position == event["position"]
        assert receipt.event_hash == hash_leaf(canonical(history[event["event_id"]]))

    event_id = body["events"][1]["event_id"]
    r = api.client.get("/v1/ledger/proofs/inclusion", params={"event_id": event_id})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_integrated"
    missing = "00000000-0000-4000-8000-000000000000"
    r = api.client.get("/v1/ledger/proofs/inclusion", params={"event_id": missing})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"

    assert api.services.ledger.integrate() == 2
    r = api.client.get("/v1/ledger/proofs/inclusion", params={"event_id": event_id})
    assert r.status_code == 200, r.text
    proof = r.json()
    assert proof["leaf_index"] == 1 and proof["tree_size"] == 2
    checkpoint = verify_checkpoint(proof["checkpoint"], keys, origin="consentry/default")
    receipt = Receipt.from_json_dict(body["events"][1]["receipt"])
    assert b64(proof["leaf_hash"]) == receipt.event_hash
    verify_inclusion(
        receipt.event_hash,
        proof["leaf_index"],
        checkpoint.size,
        [b64(h) for h in proof["inclusion_proof"]],
        checkpoint.root_hash,
    )


def test_checkpoints_and_consistency(api: ApiClient) -> None:
    api.purpose("email")
    for i in range(5):
        api.record(f"s{i}", email="given")
    api.services.ledger.integrate()
    keys = keys_of(api)
    latest = api.client.get("/v1/ledger/checkpoint").json()
    assert latest["tree_size"] == 5 and latest["stored"] is True
    kept = api.client.get("/v1/ledger/checkpoint", params={"size": 3}).json()
    assert kept["tree_size"] == 3 and kept["stored"] is False  # signed on request
    old = verify_checkpoint(kept["checkpoint"], keys)
    text = api.client.get("/v1/ledger/checkpoint", params={"format": "text"})
    assert text.headers["content-type"].startswith("text/plain")
    assert verify_checkpoint(text.text, keys).size == 5

    for i in range(5, 12):
        api.record(f"s{i}", email="given")
    api.services.ledger.integrate()
    r = api.client.get("/v1/ledger/proofs/consistency", params={"from": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    new = verify_checkpoint(body["checkpoint"], keys)
    assert (body["from"], body["to"], new.size) == (3, 12, 12)
    proof = [b64(h) for h in body["consistency_proof"]]
    verify_consistency(old.size, new.size, proof, old.root_hash, new.root_hash)
    r = api.client.get("/v1/ledger/proofs/consistency", params={"from": 3, "to": 7})
    mid = verify_checkpoint(r.json()["checkpoint"], keys)
    proof = [b64(h) for h in r.json()["consistency_proof"]]
    verify_consistency(3, 7, proof, old.root_hash, mid.root_hash)


def test_errors_share_the_one_shape(api: ApiClient) -> None:
    api.purpose("email")
    api.record("a", email="given")
    api.services.ledger.integrate()
    for path, params in [
        ("/v1/ledger/checkpoint", {"size": 2}),
        ("/v1/ledger/proofs/consistency", {"from": 1, "to": 9}),
        ("/v1/ledger/proofs/consistency", {"from": 0}),
        ("/v1/ledger/proofs/inclusion", {"event_id": "nope"}),
        ("/v1/ledger/checkpoint", {"size": -1}),
    ]:
        r = api.client.get(path, params=params)
        assert r.status_code == 422, (path, params, r.text)
        assert set(r.json()["error"]) >= {"status", "code", "message"}
    event_id = api.client.get("/v1/subjects/a/history").json()["events"][0]["event_id"]
    r = api.client.get("/v1/ledger/proofs/inclusion", params={"event_id": event_id, "size": 2})
    assert r.status_code == 422 and "from 1 to 1" in r.json()["error"]["message"]


def test_tenants_have_their_own_trees_and_keys(api: ApiClient) -> None:
    api.purpose("email")
    api.record("a", email="given")
    other = api.key_for(Role.ADMIN, "acme")
    r = api.client.post(
        "/v1/purposes", json={"id": "email", "name": "E", "legal_basis": "consent"}, headers=other
    )
    assert r.status_code in (200, 201), r.text
    r = api.client.post(
        "/v1/consents",
        json={"subject": "z", "events": [{"purpose": "email", "action": "given"}]},
        headers=other,
    )
    acme_event = r.json()["events"][0]
    api.record("b", email="given")
    api.services.ledger.integrate()
    default_keys, acme_keys = keys_of(api), keys_of(api, other)
    assert {k.name for k in acme_keys} == {"consentry/acme"}
    assert not {k.raw for k in default_keys} & {k.raw for k in acme_keys}
    # acme's event is leaf 0 of acme's tree, although it is position 2 of the log.
    proof = api.client.get(
        "/v1/ledger/proofs/inclusion", params={"event_id": acme_event["event_id"]}, headers=other
    ).json()
    assert (proof["position"], proof["leaf_index"], proof["tree_size"]) == (2, 0, 1)
    receipt = Receipt.from_json_dict(acme_event["receipt"])
    verify_receipt(receipt, acme_keys)
    checkpoint = verify_checkpoint(proof["checkpoint"], acme_keys, origin="consentry/acme")
    verify_inclusion(receipt.event_hash, 0, 1, [], checkpoint.root_hash)
    # ...and invisible to the default tenant.
    r = api.client.get("/v1/ledger/proofs/inclusion", params={"event_id": acme_event["event_id"]})
    assert r.status_code == 404
    assert api.client.get("/v1/ledger/checkpoint").json()["tree_size"] == 2


def test_roles(api: ApiClient) -> None:
    api.purpose("email")
    api.record("a", email="given")
    api.services.ledger.integrate()
    for role, status in [
        (Role.AUDITOR, 200),
        (Role.COLLECTOR, 200),
        (Role.CHECKER, 403),
    ]:
        r = api.client.get("/v1/ledger/checkpoint", headers=api.key_for(role))
        assert r.status_code == status, (role, r.text)
    r = api.client.get("/v1/ledger/keys", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401


def test_history_export_with_proofs(api: ApiClient) -> None:
    api.purpose("email")
    api.purpose("ads")
    api.record("u", email="given", ads="given")
    api.record("other", email="given")
    api.record("u", email="withdrawn")
    api.services.ledger.integrate()
    api.record("u", ads="refused")  # not yet integrated: no proof, said so
    keys = keys_of(api)
    r = api.client.get("/v1/subjects/u/history", params={"proofs": "true"})
    assert r.status_code == 200, r.text
    export = r.json()
    checkpoint = verify_checkpoint(export["checkpoint"], keys, origin="consentry/default")
    assert export["tree_size"] == checkpoint.size == 4
    proven = [e for e in export["events"] if e["ledger"] is not None]
    assert len(proven) == 3 and len(export["events"]) == 4
    for event in proven:
        ledger = event["ledger"]
        verify_inclusion(
            hash_leaf(canonical(event)),
            ledger["leaf_index"],
            checkpoint.size,
            [b64(h) for h in ledger["inclusion_proof"]],
            checkpoint.root_hash,
        )
    plain = api.client.get("/v1/subjects/u/history").json()
    assert "ledger" not in plain["events"][0] and "checkpoint" not in plain


def test_receipts_stay_verifiable_after_key_rotation(api: ApiClient) -> None:
    api.purpose("email")
    before = api.record("a", email="given")["events"][0]
    api.services.ledger.integrate()
    old_checkpoint = api.client.get("/v1/ledger/checkpoint").json()["checkpoint"]
    api.services.keyring.rotate("default")
    after = api.record("b", email="given")["events"][0]
    api.services.ledger.integrate()
    keys = keys_of(api)
    listed = api.client.get("/v1/ledger/keys").json()["keys"]
    assert [k["current"] for k in listed] == [True, False]
    old_key = VerifierKey.parse(listed[1]["verifier_key"])
    assert verify_receipt(Receipt.from_json_dict(before["receipt"]), keys) == old_key
    assert verify_receipt(Receipt.from_json_dict(after["receipt"]), keys) != old_key
    old = verify_checkpoint(old_checkpoint, keys)
    r = api.client.get("/v1/ledger/proofs/consistency", params={"from": old.size}).json()
    new = verify_checkpoint(r["checkpoint"], keys)
    assert new.size == 2
    verify_consistency(
        old.size, new.size, [b64(h) for h in r["consistency_proof"]], old.root_hash, new.root_hash
    )
