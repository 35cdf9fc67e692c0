"""Purposes and notices: what a tenant processes data for, and what it told people."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from consentry.api.deps import ServicesDep, needs
from consentry.domain.errors import NotFoundError
from consentry.domain.notices import Notice
from consentry.domain.purposes import PURPOSE_ID_PATTERN, Purpose
from consentry.keys import Scope
from consentry.recording.schema import NoticeBody, PurposeBody
from consentry.serialize import notice_to_dict, purpose_to_dict
from consentry.storage.base import ApiKey

router = APIRouter(prefix="/v1", tags=["catalogue"])


@router.post("/purposes", status_code=201, summary="Declare a purpose (immutable once created)")
def create_purpose(
    body: PurposeBody,
    response: Response,
    services: ServicesDep,
    key: Annotated[ApiKey, Depends(needs(Scope.CATALOG_WRITE))],
) -> dict[str, Any]:
    purpose = Purpose(**body.model_dump())
    if not services.recorder.add_purpose(key.tenant, purpose):
        response.status_code = 200
    return purpose_to_dict(purpose)


@router.get("/purposes", summary="Every purpose of the tenant")
def list_purposes(
    services: ServicesDep,
    key: Annotated[ApiKey, Depends(needs(Scope.CATALOG_READ))],
) -> dict[str, Any]:
    return {"purposes": [purpose_to_dict(p) for p in services.store.get_purposes(key.tenant)]}


@router.post("/notices", status_code=201, summary="Publish a new version of a notice")
def create_notice(
    body: NoticeBody,
    response: Response,
    services: ServicesDep,
    key: Annotated[ApiKey, Depends(needs(Scope.CATALOG_WRITE))],
) -> dict[str, Any]:
    data = body.model_dump()
    data["purposes"] = tuple(data["purposes"])
    data["published_at"] = data["published_at"] or services.recorder.clock()
    notice = Notice(**data)
    if not services.recorder.add_notice(key.tenant, notice):
        response.status_code = 200
    # The version as stored (with the time it was recorded; a retry gets the first one's).
    stored = services.store.get_notices(key.tenant, notice.id)
    return notice_to_dict(next(n for n in stored if n.version == notice.version))


@router.get("/notices", summary="Every version of every notice, in publication order")
def list_notices(
    services: ServicesDep,
    key: Annotated[ApiKey, Depends(needs(Scope.CATALOG_READ))],
) -> dict[str, Any]:
    return {"notices": [notice_to_dict(n) for n in services.store.get_notices(key.tenant)]}


@router.get("/notices/{notice_id}", summary="Every version of a notice, oldest first")
def get_notice(
    notice_id: str,
    services: ServicesDep,
    key: Annotated[ApiKey, Depends(needs(Scope.CATALOG_READ))],
) -> dict[str, Any]:
    versions: list[Notice] = []
    if PURPOSE_ID_PATTERN.match(notice_id) and "\n" not in notice_id:  # else it cannot exist
        found = services.store.get_notices(key.tenant, notice_id)
        versions = sorted(found, key=lambda n: n.version)
    if not versions:
        raise NotFoundError(f"notice {notice_id!r} does not exist")
    return {"id": notice_id, "versions": [notice_to_dict(n) for n in versions]}
