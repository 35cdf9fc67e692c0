"""API keys of the caller's tenant: create, list, revoke and rotate them (admin keys only).

A key is shown once, when it is created; afterwards only its id, role and label are visible.
A revoked key is refused by every server within a second (api/deps.py, KeyCache).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from consentry.api.deps import ServicesDep, needs
from consentry.keys import MAX_GRACE, IssuedKey, Scope, create_key, revoke_key, rotate_key
from consentry.serialize import key_to_dict
from consentry.storage.base import ApiKey, Role

router = APIRouter(prefix="/v1/keys", tags=["keys"])
Admin = Annotated[ApiKey, Depends(needs(Scope.KEYS_MANAGE))]


class NewKeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role = Field(description="What the key may do: admin, collector, checker or auditor.")
    label: str = Field("", max_length=200, description="A note to recognise the key by.")


class RotateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_seconds: int = Field(
        0,
        ge=0,
        le=int(MAX_GRACE.total_seconds()),
        description="How long the old key keeps working, so clients can switch (0: not at all).",
    )


def issued_to_dict(issued: IssuedKey) -> dict[str, Any]:
    return {**key_to_dict(issued.record), "key": issued.key}


@router.post("", status_code=201, summary="Create an API key (shown once, in this answer)")
def create(body: NewKeyBody, services: ServicesDep, caller: Admin) -> dict[str, Any]:
    return issued_to_dict(create_key(services.store, caller.tenant, body.role, body.label))


@router.get("", summary="The tenant's API keys (ids, roles, labels; never the keys)")
def list_keys(services: ServicesDep, caller: Admin) -> dict[str, Any]:
    return {"keys": [key_to_dict(k) for k in services.store.list_api_keys(caller.tenant)]}


@router.post(
    "/{key_id}/revoke",
    summary="Revoke a key now (refused by every server within a second)",
)
def revoke(key_id: str, request: Request, services: ServicesDep, caller: Admin) -> dict[str, Any]:
    revoked = revoke_key(services.store, caller.tenant, key_id, revoked_by=caller.key_id)
    request.app.state.key_cache.invalidate()
    return key_to_dict(revoked)


@router.post(
    "/{key_id}/rotate",
    status_code=201,
    summary="Issue a replacement (same role and label) and revoke the key, after a grace period",
)
def rotate(
    key_id: str,
    request: Request,
    services: ServicesDep,
    caller: Admin,
    body: RotateBody | None = None,
) -> dict[str, Any]:
    grace = timedelta(seconds=body.grace_seconds if body else 0)
    rotated = rotate_key(
        services.store, caller.tenant, key_id, grace=grace, revoked_by=caller.key_id
    )
    request.app.state.key_cache.invalidate()
    return {**issued_to_dict(rotated.issued), "replaces": key_to_dict(rotated.old)}
