"""The verifiable ledger over HTTP: signed checkpoints, inclusion and consistency proofs, keys.

Everything here is about the caller's tenant (its own tree, signed with its own key). Hashes and
signatures are standard base64; checkpoints are C2SP signed notes (text). What to do with them,
offline, is in docs/ledger.md ("For auditors").
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse

from consentry.api.deps import ServicesDep, needs
from consentry.domain.events import RecordedEvent
from consentry.keys import Scope
from consentry.services import Services
from consentry.storage.base import ApiKey

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])

MAX_SIZE = 2**63 - 1
Reader = Annotated[ApiKey, Depends(needs(Scope.LEDGER_READ))]


@router.get(
    "/checkpoint",
    summary="A signed checkpoint (tree size, root hash, time) of the tenant's ledger",
    description="Without `size`, the latest integrated tree. The one the integrator stored at"
    " that size when there is one (`stored: true`), else one signed now: any past size can be"
    " signed, the tree's nodes never change. `format=text` returns the signed note alone"
    " (text/plain), ready to keep in a file.",
    response_model=None,
)
def get_checkpoint(
    services: ServicesDep,
    key: Reader,
    size: Annotated[int | None, Query(ge=0, le=MAX_SIZE)] = None,
    format: Annotated[Literal["json", "text"], Query()] = "json",
) -> dict[str, Any] | PlainTextResponse:
    view = services.ledger.checkpoint(key.tenant, size)
    if format == "text":
        return PlainTextResponse(view.note)
    return view.to_dict()


@router.get(
    "/proofs/inclusion",
    summary="Proof that an event is in the tenant's ledger",
    description="The event's leaf index and hash, its RFC 9162 audit path in the tree of"
    " `tree_size` leaves (default: the latest), and the signed checkpoint of that tree."
    " 404 `not_integrated` while the integrator has not yet added the event (well under a"
    " second after the write): retry.",
)
def get_inclusion_proof(
    services: ServicesDep,
    key: Reader,
    event_id: Annotated[uuid.UUID, Query()],
    size: Annotated[int | None, Query(ge=1, le=MAX_SIZE)] = None,
) -> dict[str, Any]:
    return services.ledger.inclusion(key.tenant, event_id, size).to_dict()


@router.get(
    "/proofs/consistency",
    summary="Proof that the ledger at size `to` extends the ledger at size `from`",
    description="RFC 9162 consistency proof between two sizes of the tenant's tree (`to`"
    " defaults to the latest), with the signed checkpoint of size `to`. With a checkpoint"
    " kept from earlier, it shows that nothing before it was altered, removed or reordered.",
)
def get_consistency_proof(
    services: ServicesDep,
    key: Reader,
    first: Annotated[int, Query(alias="from", ge=1, le=MAX_SIZE)],
    second: Annotated[int | None, Query(alias="to", ge=1, le=MAX_SIZE)] = None,
) -> dict[str, Any]:
    return services.ledger.consistency(key.tenant, first, second).to_dict()


@router.get(
    "/keys",
    summary="The public keys that sign the tenant's checkpoints and receipts",
    description="Current and retired (rotated out) keys, as signed-note verifier keys"
    " (`name+keyid+base64`) and raw base64 Ed25519 public keys. Obtain them through a channel"
    " you trust before relying on a proof.",
)
def get_keys(services: ServicesDep, key: Reader) -> dict[str, Any]:
    return services.ledger.public_keys(key.tenant)


def history_with_proofs(
    services: Services, tenant: str, events: Sequence[RecordedEvent]
) -> dict[str, Any]:
    """A history export where each event carries its inclusion proof (`ledger`, null while not
    yet integrated), all against one signed checkpoint: what GET /v1/subjects/{s}/history?
    proofs=true returns. An auditor recomputes each event's canonical bytes from its fields
    (without `ledger`), hashes them, and checks the proof against the checkpoint."""
    checkpoint, proofs = services.ledger.inclusions(tenant, events)
    out = []
    for event in events:
        proof = proofs.get(str(event.event_id))
        out.append(
            {**event.to_dict(), "ledger": proof.to_dict(with_checkpoint=False) if proof else None}
        )
    return {
        "events": out,
        "tree_size": checkpoint.tree_size if checkpoint else 0,
        "checkpoint": checkpoint.note if checkpoint else None,
    }
