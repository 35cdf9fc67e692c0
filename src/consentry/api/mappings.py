"""The tenant's signal mapping: its purposes <-> TCF, US opt-out categories, Consent Mode.

PUT /v1/mappings replaces the mapping with a new version (the old ones stay, append-only);
GET /v1/mappings returns the current one. See recording/signals_in.py for what it drives.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from consentry.api.deps import ServicesDep, needs
from consentry.domain.events import format_time
from consentry.keys import Scope
from consentry.recording.gpp_signals import UsSignal
from consentry.recording.signals_in import SignalMapping, load_mapping
from consentry.storage.base import ApiKey
from consentry.storage.collection import CollectionStore, SettingsKind

router = APIRouter(prefix="/v1", tags=["collection"])


def get_collection(request: Request) -> CollectionStore:
    """The app's collection-settings store, made on first use (it shares the log's database)."""
    collection: CollectionStore | None = getattr(request.app.state, "collection", None)
    if collection is None:
        collection = CollectionStore(request.app.state.services.store)
        request.app.state.collection = collection
    return collection


CollectionDep = Annotated[CollectionStore, Depends(get_collection)]

TcfId = Annotated[StrictInt, Field(ge=1, le=24)]


class PurposeMappingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tcf_purposes: list[TcfId] = Field(
        default_factory=list, description="TCF purposes (1-11 in TCF 2.2/2.3) this purpose needs"
    )
    tcf_special_features: list[Annotated[StrictInt, Field(ge=1, le=12)]] = Field(
        default_factory=list, description="TCF special features this purpose needs"
    )
    tcf_publisher_purposes: list[TcfId] = Field(
        default_factory=list, description="Publisher TC purposes (the tenant's own) it needs"
    )
    us_opt_out: list[UsSignal] = Field(
        default_factory=list,
        description="US categories it answers to in GPP strings (usnat and every state"
        " section): sale, sharing, targeted_advertising, sensitive_data, known_child"
        " (default: its own opt_out_category). docs/signals.md shows each section's fields.",
    )
    consent_mode: list[str] = Field(
        default_factory=list, description="Google Consent Mode v2 types it stands behind"
    )


class MappingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purposes: dict[str, PurposeMappingBody]


def mapping_response(mapping: SignalMapping, created_at: str | None) -> dict[str, Any]:
    return {"version": mapping.version, "created_at": created_at, **mapping.to_dict()}


@router.put(
    "/mappings",
    summary="Set the tenant's signal mapping (a new version)",
    description="Maps each tenant purpose to the TCF purposes, special features and publisher"
    " purposes it needs, the US opt-out categories it answers to, and the Google Consent Mode"
    " types it stands behind. Used to record TC/GPP strings (every GPP section: usnat, the state"
    " sections, tcfeuv2, tcfcav1, uspv1) (POST /v1/consents with tc_string or"
    " gpp_string) and by the banner. Purposes left out are not mapped.",
)
def put_mapping(
    body: MappingBody,
    services: ServicesDep,
    collection: CollectionDep,
    key: Annotated[ApiKey, Depends(needs(Scope.CATALOG_WRITE))],
) -> dict[str, Any]:
    mapping = SignalMapping.from_dict(body.model_dump(mode="json"))
    services.catalog.invalidate(key.tenant)
    mapping.validate(services.catalog.purposes(key.tenant))
    doc = collection.put(key.tenant, SettingsKind.MAPPING, mapping.to_dict())
    stored = SignalMapping.from_dict(doc.body, doc.version)
    return mapping_response(stored, format_time(doc.created_at))


@router.get("/mappings", summary="The tenant's current signal mapping")
def get_mapping(
    collection: CollectionDep,
    key: Annotated[ApiKey, Depends(needs(Scope.CATALOG_READ))],
) -> dict[str, Any]:
    doc = collection.latest(key.tenant, SettingsKind.MAPPING)
    mapping = load_mapping(collection, key.tenant)
    return mapping_response(mapping, format_time(doc.created_at) if doc else None)
